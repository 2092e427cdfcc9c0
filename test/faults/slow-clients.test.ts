import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { KEY_A, listBlobs, objectKeyOf, startServer, type TestServer } from '../helpers/app.js'
import { batchFile } from './helpers/batch.js'
import { multipartBytes, openRaw, uploadHead, waitForUploadsCounted } from './helpers/raw-http.js'

/*
 * Slow clients against the very Fastify options production uses (buildApp), with tiny
 * timeouts: HEADERS_TIMEOUT_MS 600, REQUEST_IDLE_TIMEOUT_MS 500, KEEP_ALIVE_TIMEOUT_MS 300.
 */

const TIMEOUTS = { HEADERS_TIMEOUT_MS: '600', REQUEST_IDLE_TIMEOUT_MS: '500', KEEP_ALIVE_TIMEOUT_MS: '300', RECONCILE_INTERVAL_MS: '0' }

const content = batchFile(400)
const body = await multipartBytes([{ name: 'purpose', value: 'batch' }, { name: 'file', filename: 'slow.jsonl', content }])

async function assertNothingStored (t: Test, server: TestServer): Promise<void> {
  t.same(await listBlobs(server.dataDir), [], 'no object and no temp file')
  t.same(await server.app.fileStore.scan(undefined, 10), [], 'no row')
}

t.test('slowloris: a header a byte at a time is cut at HEADERS_TIMEOUT_MS with 408', async (t) => {
  const server = await startServer(t, TIMEOUTS)
  const connection = await openRaw(server.url)
  await connection.write(`POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${KEY_A}\r\nX-Slow: `)
  // A byte every 200 ms: the connection is never idle, only its headers never end.
  const dripping = (async () => {
    for (let i = 0; i < 50; i++) {
      await sleep(200)
      if (!await connection.write('a')) return
    }
  })()
  const response = await connection.response()
  const ms = await connection.closed
  await dripping
  // The client-error handler answers in OpenAI's shape (the request's family is not
  // known before its headers are complete) and closes the socket.
  t.equal(response?.status, 408)
  t.same(JSON.parse(response?.body ?? '{}'), { error: { message: 'The request headers did not arrive in time (HEADERS_TIMEOUT_MS).', type: 'invalid_request_error', param: null, code: 'request_timeout' } })
  // Node checks every HEADERS_TIMEOUT_MS / 4 (150 ms here), not every 30 s.
  t.ok(ms >= 550 && ms < 3000, `closed after ${ms} ms`)
  await assertNothingStored(t, server)
})

t.test('a body that stops mid-upload and holds the socket is cut at REQUEST_IDLE_TIMEOUT_MS; nothing is kept', async (t) => {
  const server = await startServer(t, TIMEOUTS)
  const connection = await openRaw(server.url)
  await connection.write(uploadHead(KEY_A, body.length))
  await connection.write(body.subarray(0, Math.floor(body.length / 2)))
  const ms = await connection.closed
  t.equal(await connection.response(), null, 'the socket is closed, no answer can be sent on it')
  t.ok(ms >= 450 && ms < 3000, `closed after ${ms} ms`)
  await waitForUploadsCounted(server.url, 1)
  await assertNothingStored(t, server)
})

t.test('the same stall on the second request of a kept-alive connection is cut too', async (t) => {
  const server = await startServer(t, TIMEOUTS)
  const connection = await openRaw(server.url)
  await connection.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
  t.equal((await connection.response(0))?.status, 200)
  const sentAt = Date.now()
  await connection.write(uploadHead(KEY_A, body.length))
  await connection.write(body.subarray(0, 1000))
  await connection.closed
  const ms = Date.now() - sentAt
  t.equal(await connection.response(1), null, 'no second answer: the connection was cut')
  t.ok(ms >= 450 && ms < 3000, `closed ${ms} ms after the stall`)
  await waitForUploadsCounted(server.url, 1)
  await assertNothingStored(t, server)
})

t.test('an idle kept-alive connection is closed after KEEP_ALIVE_TIMEOUT_MS', async (t) => {
  const server = await startServer(t, TIMEOUTS)
  const connection = await openRaw(server.url)
  await connection.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
  const response = await connection.response()
  const answeredAt = Date.now()
  t.equal(response?.status, 200)
  t.equal(response?.headers['keep-alive'], 'timeout=0', 'announced in whole seconds, rounded down')
  await connection.closed
  const ms = Date.now() - answeredAt
  // Node 20 closes the socket 1 s after keepAliveTimeout (seen here: 1.3 s for 300 ms), a
  // margin for clients that reuse it right at the announced limit.
  t.ok(ms >= 1250 && ms < 3000, `closed ${ms} ms after the answer`)
})

t.test('a slow but steady upload (a chunk every 200 ms for 3 s, idle limit 500 ms) is stored', async (t) => {
  const server = await startServer(t, TIMEOUTS)
  const connection = await openRaw(server.url)
  await connection.write(uploadHead(KEY_A, body.length))
  const pieces = 15
  const size = Math.ceil(body.length / pieces)
  const started = Date.now()
  for (let i = 0; i < pieces; i++) {
    if (i > 0) await sleep(200)
    t.ok(await connection.write(body.subarray(i * size, (i + 1) * size)), `piece ${i + 1} sent`)
  }
  const response = await connection.response()
  t.ok(Date.now() - started >= 2800, 'the upload took about 3 s, six times the idle limit')
  t.equal(response?.status, 200, response?.body ?? '')
  const file = JSON.parse(response?.body ?? '{}') as { id: string, bytes: number }
  t.equal(file.bytes, content.length)
  t.same(await listBlobs(server.dataDir), [`${await objectKeyOf(server.app, file.id)}:${content.length}`])
  connection.socket.destroy()
})
