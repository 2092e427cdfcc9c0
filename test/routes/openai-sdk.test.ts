import { createReadStream } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import OpenAI, { toFile } from 'openai'
import t from 'tap'
import { KEY_A, objectKeyOf, startServer } from '../helpers/app.js'

const SAMPLE = new URL('../fixtures/test_model.jsonl', import.meta.url).pathname

t.test('the official openai SDK uploads and retrieves against /v1', async (t) => {
  const server = await startServer(t)
  const client = new OpenAI({ apiKey: KEY_A, baseURL: `${server.url}/v1`, maxRetries: 0 })
  const sample = await readFile(SAMPLE)

  const fromStream = await client.files.create({ file: createReadStream(SAMPLE), purpose: 'batch' })
  t.equal(fromStream.object, 'file')
  t.equal(fromStream.bytes, sample.length)
  t.equal(fromStream.filename, 'test_model.jsonl')
  t.equal(fromStream.purpose, 'batch')
  t.same(await client.files.retrieve(fromStream.id), fromStream, 'retrieve returns the same object')

  const fromBuffer = await client.files.create({ file: await toFile(sample, 'from-buffer.jsonl'), purpose: 'batch' })
  t.equal(fromBuffer.bytes, sample.length)
  t.equal(fromBuffer.filename, 'from-buffer.jsonl')
  t.not(fromBuffer.id, fromStream.id)
  t.same(await client.files.retrieve(fromBuffer.id), fromBuffer)

  // Larger than @fastify/multipart's 1 MiB default fileSize: must arrive whole, not cut.
  const line = (i: number) => JSON.stringify({ custom_id: `req-${i}`, method: 'POST', url: '/v1/chat/completions', body: { model: 'm', messages: [{ role: 'user', content: 'x'.repeat(200) }] } })
  const big = Buffer.from(Array.from({ length: 12000 }, (_, i) => line(i)).join('\n') + '\n')
  t.ok(big.length > 2 * 1024 * 1024)
  const bigFile = path.join(server.dataDir, '..', 'big.jsonl')
  await writeFile(bigFile, big)
  const uploaded = await client.files.create({ file: createReadStream(bigFile), purpose: 'batch' })
  t.equal(uploaded.bytes, big.length, 'no silent truncation at 1 MiB')
  const stored = await readFile(path.join(server.dataDir, 'blobs', await objectKeyOf(server.app, uploaded.id)))
  t.ok(stored.equals(big), 'stored bytes are exactly the uploaded bytes')

  const invalid = client.files.create({ file: await toFile(Buffer.from('{"custom_id": 1}\n'), 'bad.jsonl'), purpose: 'batch' })
  await t.rejects(invalid, { status: 400, code: 'invalid_batch_file', param: 'file' })
  const missing = await client.files.retrieve('file-01J00000000000000000000000').catch((error: unknown) => error)
  t.ok(missing instanceof OpenAI.NotFoundError, 'a missing file raises the SDK\'s NotFoundError')
})
