import { Buffer } from 'node:buffer'
import { once } from 'node:events'
import { request, type IncomingMessage } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { CheckPool, kWorkers } from '../../src/upload/check-pool.js'
import { KEY_A, listBlobs, startServer, type TestServer } from '../helpers/app.js'
import { BOUNDARY, multipartBody, postMultipart, type Part } from '../helpers/multipart.js'

/** Issue 12 item 2 over real sockets: uploads checked by worker threads answer as inline ones. */

const line = (id: string, extra: Record<string, unknown> = {}): string => JSON.stringify({
  custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-x', messages: [{ role: 'user', content: `hello ${id}` }], ...extra }
})
const linesOf = (count: number, edit: (i: number, l: string) => string = (_i, l) => l): string =>
  Array.from({ length: count }, (_, i) => edit(i, line(`req-${i}`))).join('\n') + '\n'

const FILES: Record<string, string> = {
  'valid, 3 MiB': linesOf(24_000),
  'valid, small': linesOf(3),
  'an error on line 3 of 3 MiB': linesOf(24_000, (i, l) => i === 2 ? 'not json' : l),
  'an error on the last line': linesOf(24_000, (i, l) => i === 23_999 ? l.replace('"POST"', '"GET"') : l),
  'many errors (the report is capped)': linesOf(2_000, (i, l) => i % 7 === 0 ? `{"custom_id":"req-${i % 3}"}` : l),
  'empty lines and a duplicate': `${line('a')}\n\n${line('a')}\n`
}

/** What the two servers may differ in: ids and times. */
function normalized (body: string): unknown {
  return JSON.parse(body, (key, value: unknown) => key === 'id' || key === 'created_at' || key === 'expires_at' ? '…' : value)
}

async function upload (server: TestServer, content: string, purposeFirst: boolean): Promise<{ status: number, body: unknown, blobs: string[] }> {
  const parts: Part[] = [{ name: 'purpose', value: 'batch' }, { name: 'file', filename: 'in.jsonl', content: Buffer.from(content) }]
  const res = await postMultipart(`${server.url}/v1/files`, purposeFirst ? parts : parts.reverse(), { key: KEY_A })
  // Object names are upload ids: the sizes are what must match.
  return { status: res.status, body: normalized(res.body), blobs: (await listBlobs(server.dataDir)).map((blob) => blob.split(':')[1] ?? '').sort() }
}

t.test('the same files, the same answers and the same storage: on the event loop and in 2 workers', async (t) => {
  // Two servers, two data folders of their own (t.testdir is one per test, made anew at each call).
  const dirs = [await mkdtemp(path.join(tmpdir(), 'files-api-inline-')), await mkdtemp(path.join(tmpdir(), 'files-api-pooled-'))]
  t.teardown(async () => { for (const dir of dirs) await rm(dir, { recursive: true, force: true }) })
  const inline = await startServer(t, { UPLOAD_WORKER_THREADS: '0', DATA_DIR: dirs[0] as string })
  const pooled = await startServer(t, { UPLOAD_WORKER_THREADS: '2', DATA_DIR: dirs[1] as string })
  t.equal(inline.app.checkPool, null, '0: no pool')
  t.equal(pooled.app.checkPool?.size, 2)
  for (const [name, content] of Object.entries(FILES)) {
    for (const purposeFirst of [true, false]) {
      const label = `${name}, purpose ${purposeFirst ? 'first' : 'last'}`
      const a = await upload(inline, content, purposeFirst)
      const b = await upload(pooled, content, purposeFirst)
      t.equal(b.status, a.status, `${label}: ${a.status}`)
      t.same(b.body, a.body, `${label}: the same body`)
      t.same(b.blobs, a.blobs, `${label}: the same objects stored`)
      t.equal(a.status, name.startsWith('valid') ? 200 : 400, label)
    }
  }
  t.same(await pooled.app.checkPool?.sessions(), [0, 0], 'every check finished in its worker')
})

t.test('a declared body under OFFLOAD_MIN_BYTES is checked inline, a larger or chunked one in a worker', async (t) => {
  const pool = new CheckPool({ size: 1 })
  t.teardown(async () => { await pool.close() })
  let opened = 0
  const open = pool.open.bind(pool)
  pool.open = (validator) => { opened++; return open(validator) }
  const server = await startServer(t, {}, { checkPool: pool })
  const send = async (content: string, declared: boolean): Promise<number> => {
    const chunks: Buffer[] = []
    for await (const chunk of multipartBody([{ name: 'purpose', value: 'batch' }, { name: 'file', filename: 'in.jsonl', content: Buffer.from(content) }])) chunks.push(chunk)
    const bodyBytes = Buffer.concat(chunks)
    const headers: Record<string, string> = { authorization: `Bearer ${KEY_A}`, 'content-type': `multipart/form-data; boundary=${BOUNDARY}` }
    // Node would compute a Content-Length for a body handed to end() whole.
    if (declared) headers['content-length'] = String(bodyBytes.length)
    else headers['transfer-encoding'] = 'chunked'
    const req = request(`${server.url}/v1/files`, { method: 'POST', headers })
    req.end(bodyBytes)
    const [res] = await once(req, 'response') as [IncomingMessage]
    res.resume()
    await once(res, 'end')
    return res.statusCode ?? 0
  }
  t.equal(await send(FILES['valid, small'] as string, true), 200)
  t.equal(opened, 0, 'small and declared: inline')
  t.equal(await send(FILES['valid, small'] as string, false), 200)
  t.equal(opened, 1, 'chunked (size unknown): a worker')
  t.equal(await send(FILES['valid, 3 MiB'] as string, true), 200)
  t.equal(opened, 2, 'large: a worker')
})

/** An upload whose body the test feeds by hand, to stop it or break its worker halfway. */
function openUpload (server: TestServer): { req: ReturnType<typeof request>, response: Promise<IncomingMessage> } {
  const req = request(`${server.url}/v1/files`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY_A}`, 'content-type': `multipart/form-data; boundary=${BOUNDARY}` }
  })
  req.on('error', () => {})
  const response = once(req, 'response').then(([res]) => res as IncomingMessage)
  response.catch(() => {})
  req.write(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n`)
  req.write(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="in.jsonl"\r\nContent-Type: application/jsonl\r\n\r\n`)
  req.write(linesOf(16_000))
  return { req, response }
}

async function until (t: Test, what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return
    await sleep(25)
  }
  t.fail(`timed out waiting for ${what}`)
}

async function pooledServer (t: Test): Promise<{ server: TestServer, pool: CheckPool }> {
  const pool = new CheckPool({ size: 1 })
  t.teardown(async () => { await pool.close() })
  return { server: await startServer(t, {}, { checkPool: pool }), pool }
}

t.test('a client gone mid-upload frees its worker: nothing stored, the next upload succeeds', async (t) => {
  const { server, pool } = await pooledServer(t)
  const { req } = openUpload(server)
  await until(t, 'the upload to reach its worker', async () => (await pool.sessions())[0] === 1)
  req.destroy()
  await until(t, 'the worker to forget the upload', async () => (await pool.sessions())[0] === 0)
  await until(t, 'storage to be empty', async () => (await listBlobs(server.dataDir)).length === 0)
  const next = await upload(server, FILES['valid, 3 MiB'] as string, true)
  t.equal(next.status, 200)
  t.equal(next.blobs.length, 1)
})

t.test('a worker that dies mid-upload fails that upload with a 500, nothing stored; a new worker takes the next', async (t) => {
  const { server, pool } = await pooledServer(t)
  const { req, response } = openUpload(server)
  await until(t, 'the upload to reach its worker', async () => (await pool.sessions())[0] === 1)
  const [worker] = pool[kWorkers]
  await worker?.terminate()
  // The rest of the body comes after the worker is gone (a client does not know).
  req.end(`${linesOf(100)}\r\n--${BOUNDARY}--\r\n`)
  const res = await response
  const chunks: Buffer[] = []
  for await (const chunk of res) chunks.push(chunk as Buffer)
  t.equal(res.statusCode, 500)
  t.match(JSON.parse(Buffer.concat(chunks).toString()), { error: { code: 'internal_error', type: 'server_error' } })
  await until(t, 'storage to be empty', async () => (await listBlobs(server.dataDir)).length === 0)
  t.equal(pool[kWorkers].length, 1, 'replaced')
  t.not(pool[kWorkers][0], worker)
  const next = await upload(server, FILES['valid, 3 MiB'] as string, true)
  t.equal(next.status, 200)
  t.equal(next.blobs.length, 1)
})
