import { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import { readFirstRequest } from '../../src/batches/first-line.js'
import { blobStoreOptions, loadConfig } from '../../src/config.js'
import type { BlobStore } from '../../src/storage/blob-store.js'
import { createBlobStore } from '../../src/storage/create-blob-store.js'
import { createFsBlobStore } from '../../src/storage/fs-blob-store.js'
import { countingBlobStore } from '../helpers/counting-blob-store.js'
import { serviceEnv, startS3Server } from '../helpers/s3-server.js'

const MiB = 1024 * 1024
const line = (i: number, url = '/v1/chat/completions') => JSON.stringify({ custom_id: `r${i}`, method: 'POST', url, body: { model: 'm1', messages: [{ role: 'user', content: 'x'.repeat(200) }] } })

async function put (store: BlobStore, key: string, content: string | Buffer): Promise<void> {
  await store.put(key, Readable.from([Buffer.from(content)]))
}

async function fsStore (t: Test): Promise<BlobStore> {
  const store = await createFsBlobStore({ root: t.testdir() })
  t.teardown(() => store.close())
  return store
}

t.test('the first request line speaks for the file: url and body.model, as the validator splits lines', async (t) => {
  const store = await fsStore(t)
  const cases: Array<[string, string | Buffer, unknown]> = [
    ['LF', `${line(1)}\n${line(2, '/v1/embeddings')}\n`, { ok: true, request: { url: '/v1/chat/completions', model: 'm1' } }],
    ['CRLF and a BOM', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${line(1)}\r\n`)]), { ok: true, request: { url: '/v1/chat/completions', model: 'm1' } }],
    ['one line without LF', line(1, '/v1/embeddings'), { ok: true, request: { url: '/v1/embeddings', model: 'm1' } }],
    ['no model', JSON.stringify({ custom_id: '1', method: 'POST', url: '/v1/x', body: {} }), { ok: true, request: { url: '/v1/x', model: null } }],
    ['blank lines first', `  \n\t\n${line(1)}\n`, { ok: true, request: { url: '/v1/chat/completions', model: 'm1' } }],
    ['empty', '', { ok: false, why: 'it has no request line.' }],
    ['not JSON', '{"custom_id": \n', { ok: false, why: 'its first line is not JSON.' }],
    ['no url', '{"custom_id": "1"}\n', { ok: false, why: 'its first line has no url.' }]
  ]
  for (const [what, content, expected] of cases) {
    await put(store, `files/p/${what.replaceAll(' ', '-')}`, content)
    t.strictSame(await readFirstRequest(store, `files/p/${what.replaceAll(' ', '-')}`, 6 * MiB), expected, what)
  }
  await put(store, 'files/p/long', `${'x'.repeat(2000)}\n${line(1)}\n`)
  t.strictSame(await readFirstRequest(store, 'files/p/long', 1000), { ok: false, why: 'its first line is longer than BATCH_MAX_LINE_BYTES (1000 bytes).' })
})

async function readsOnlyTheStart (t: Test, store: BlobStore): Promise<void> {
  const content = Array.from({ length: 60000 }, (_, i) => line(i)).join('\n') + '\n'
  t.ok(content.length > 14 * MiB)
  await put(store, 'files/p/big', content)
  const { store: counted, counts } = countingBlobStore(store)
  t.strictSame(await readFirstRequest(counted, 'files/p/big', 6 * MiB), { ok: true, request: { url: '/v1/chat/completions', model: 'm1' } })
  // Let a read-ahead already in flight land before counting.
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(counts.get, 1)
  // The fs driver reads 1 MiB at a time; a read-ahead may add one more chunk, never the file.
  t.ok(counts.bytesRead <= 2 * MiB, `read ${counts.bytesRead} bytes of ${content.length}: the stream was destroyed after the first line`)
}

t.test('a large file is not read past its first line (fs)', async (t) => {
  await readsOnlyTheStart(t, await fsStore(t))
})

t.test('a large file is not read past its first line (S3)', async (t) => {
  const s3 = await startS3Server(t)
  const store = await createBlobStore(blobStoreOptions(loadConfig({ DATA_DIR: t.testdir(), ...serviceEnv(s3) })))
  t.teardown(() => store.close())
  await readsOnlyTheStart(t, store)
})
