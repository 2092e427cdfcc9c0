import { request as httpRequest } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { KEY_A, listBlobs, objectKeyOf, startServer, type TestServer } from '../helpers/app.js'
import { BOUNDARY, postMultipart, type Part } from '../helpers/multipart.js'

function line (customId: string, model = 'm', pad = 0): string {
  return JSON.stringify({ custom_id: customId, method: 'POST', url: '/v1/chat/completions', body: { model, messages: [{ role: 'user', content: 'x'.repeat(pad) }] } })
}
const filePart = (content: Buffer, filename = 'batch.jsonl'): Part => ({ name: 'file', filename, content })
const purpose = (value: string): Part => ({ name: 'purpose', value })

async function rows (server: TestServer): Promise<number> {
  return (await server.app.fileStore.list({ project: 'project-a', limit: 1000, order: 'asc', now: 0 })).files.length
}

t.test('size limits answer 413 per purpose, in either field order, and store nothing', async (t) => {
  const server = await startServer(t, { MAX_FILE_BYTES: '4096', BATCH_MAX_FILE_BYTES: '2048' })
  const any = Buffer.alloc(5000, 0x61)
  const res = await postMultipart(`${server.url}/v1/files`, [purpose('user_data'), filePart(any, 'a.bin')], { key: KEY_A })
  t.equal(res.status, 413)
  t.same(res.json().error, {
    message: 'File is too large: the limit for purpose \'user_data\' is 4096 bytes (0 MiB).',
    type: 'invalid_request_error',
    param: 'file',
    code: 'file_too_large'
  })
  const batch = Buffer.from(Array.from({ length: 30 }, (_, i) => line(String(i))).join('\n'))
  t.ok(batch.length > 2048 && batch.length < 4096, 'between the two limits')
  for (const parts of [[purpose('batch'), filePart(batch)], [filePart(batch), purpose('batch')]]) {
    const r = await postMultipart(`${server.url}/api/v1/files`, parts, { key: KEY_A })
    t.equal(r.status, 413)
    t.equal(r.json().code, '413')
    t.equal(r.json().data.error.code, 'file_too_large')
  }
  const same = await postMultipart(`${server.url}/v1/files`, [filePart(batch), purpose('user_data')], { key: KEY_A })
  t.equal(same.status, 200, 'the same bytes are fine under the larger limit of another purpose')
  t.same((await listBlobs(server.dataDir)).filter((b) => !b.startsWith('.tmp/')), [`${await objectKeyOf(server.app, same.json().id as string)}:${batch.length}`])
  t.equal(await rows(server), 1)
})

t.test('line, request and model limits', async (t) => {
  const server = await startServer(t, { BATCH_MAX_LINE_BYTES: '300', BATCH_MAX_REQUESTS: '3' })
  const long = Buffer.from([line('1'), line('2', 'm', 400), line('3')].join('\n'))
  const r1 = await postMultipart(`${server.url}/v1/files`, [purpose('batch'), filePart(long)], { key: KEY_A })
  t.equal(r1.status, 400)
  t.same(r1.json().error.errors.map((e: { code: string, line: number }) => [e.code, e.line]), [['line_too_large', 2]])

  const many = Buffer.from([1, 2, 3, 4, 5].map((i) => line(String(i))).join('\n'))
  const r2 = await postMultipart(`${server.url}/v1/files`, [filePart(many), purpose('batch')], { key: KEY_A })
  t.equal(r2.status, 400)
  t.same(r2.json().error.errors.map((e: { code: string, line: number }) => [e.code, e.line]), [['too_many_tasks', 4]])

  const models = Buffer.from([line('1', 'a'), line('2', 'b')].join('\n'))
  const warned = await postMultipart(`${server.url}/v1/files`, [filePart(models), purpose('batch')], { key: KEY_A })
  t.equal(warned.status, 200, 'model_mismatch is a warning by default')
  t.same(warned.json().warnings.map((e: { code: string, line: number, param: string }) => [e.code, e.line, e.param]), [['model_mismatch', 2, 'body.model']])
  t.equal(await rows(server), 1)

  const strict = await startServer(t, { BATCH_MODEL_POLICY: 'reject' })
  const refused = await postMultipart(`${strict.url}/v1/files`, [filePart(models), purpose('batch')], { key: KEY_A })
  t.equal(refused.status, 400)
  t.same(refused.json().error.errors.map((e: { code: string, line: number }) => [e.code, e.line]), [['model_mismatch', 2]])
})

/** Sends the head of a large upload, then destroys the socket mid-body. */
async function abortedUpload (url: string, sendBytes: number, order: 'purpose-first' | 'file-first'): Promise<void> {
  const head = Buffer.from(
    (order === 'purpose-first' ? `--${BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n` : '') +
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\nContent-Type: application/octet-stream\r\n\r\n`)
  const body = Buffer.from(Array.from({ length: Math.ceil(sendBytes / 100) }, (_, i) => line(`id-${i}`)).join('\n'))
  await new Promise<void>((resolve) => {
    const req = httpRequest(`${url}/v1/files`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY_A}`, 'content-type': `multipart/form-data; boundary=${BOUNDARY}` }
    })
    req.on('error', () => resolve())
    req.write(head)
    req.write(body.subarray(0, sendBytes), () => {
      setTimeout(() => { req.destroy(); resolve() }, 100)
    })
  })
}

t.test('a client that disconnects mid-upload leaves nothing behind, and the server stays healthy', async (t) => {
  const server = await startServer(t)
  for (const [bytes, order] of [[3 * 1024 * 1024, 'file-first'], [200_000, 'purpose-first'], [1, 'file-first']] as const) {
    await abortedUpload(server.url, bytes, order)
    let blobs: string[] = []
    for (let i = 0; i < 50; i++) {
      blobs = await listBlobs(server.dataDir)
      if (blobs.length === 0) break
      await sleep(100)
    }
    t.same(blobs, [], `no object or temp file after a disconnect at ${bytes} bytes (${order})`)
    t.equal(await rows(server), 0)
  }
  const ok = await postMultipart(`${server.url}/v1/files`, [filePart(Buffer.from(line('1'))), purpose('batch')], { key: KEY_A })
  t.equal(ok.status, 200, 'the next upload works')
})
