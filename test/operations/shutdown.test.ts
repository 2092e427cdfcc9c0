import { connect } from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { FileRecord } from '../../src/metadata/file-store.js'
import { createSqliteFileStore } from '../../src/metadata/sqlite-file-store.js'
import { KEY_A, listBlobs, startServer, type TestServer } from '../helpers/app.js'
import { BOUNDARY } from '../helpers/multipart.js'
import { line, manualUpload } from './helpers/batch.js'

/** The rows of project-a, read from the database file after the app closed it. */
async function rowsAfterClose (t: Test, server: TestServer): Promise<FileRecord[]> {
  const store = await createSqliteFileStore({ filename: path.join(server.dataDir, 'files.db') })
  t.teardown(() => store.close())
  return (await store.list({ project: 'project-a', limit: 100, order: 'asc', now: 0 })).files
}

/** Whether a new TCP connection to the server's port is accepted. */
async function accepts (url: string): Promise<boolean> {
  const { port } = new URL(url)
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => { resolve(false) })
  })
}

const half = Buffer.from([line('1'), line('2')].join('\n') + '\n')
const rest = Buffer.from([line('3'), line('4')].join('\n') + '\n')

t.test('an upload in flight when close() is called completes within the timeout', async (t) => {
  const server = await startServer(t, { SHUTDOWN_TIMEOUT_MS: '5000' })
  const upload = manualUpload(server.url, { authorization: `Bearer ${KEY_A}` })
  await upload.write(half)
  await sleep(100)
  const started = Date.now()
  const closing = server.app.close()
  await sleep(50)
  t.equal(await accepts(server.url), false, 'no new connection is accepted once closing')
  await upload.write(rest)
  upload.finish()
  const res = await upload.response
  t.equal(res.status, 200, res.body)
  const file = JSON.parse(res.body) as { id: string, bytes: number }
  t.equal(file.bytes, half.length + rest.length)
  await closing
  t.ok(Date.now() - started < 5000, 'close did not wait for the timeout')
  const rows = await rowsAfterClose(t, server)
  t.same(rows.map((row) => `${row.id}:${row.bytes}`), [`${file.id}:${file.bytes}`])
  t.same(await listBlobs(server.dataDir), rows.map((row) => `${row.storageKey}:${row.bytes}`), 'the object, and no temp file')
})

t.test('an upload that stalls past the timeout is abandoned: 503, nothing left behind', async (t) => {
  const server = await startServer(t, { SHUTDOWN_TIMEOUT_MS: '300' })
  const upload = manualUpload(server.url, { authorization: `Bearer ${KEY_A}` })
  await upload.write(half)
  await sleep(100)
  t.equal((await listBlobs(server.dataDir)).filter((b) => b.startsWith('.tmp/')).length, 1, 'the upload is being written')
  const started = Date.now()
  const closing = server.app.close()
  const res = await upload.response
  const waited = Date.now() - started
  t.ok(waited >= 290 && waited < 3000, `answered after the timeout (${waited} ms)`)
  t.equal(res.status, 503)
  t.equal(res.headers.connection, 'close')
  t.same(JSON.parse(res.body), {
    error: {
      message: 'The server is shutting down and abandoned this upload; nothing was stored. Try again.',
      type: 'server_error',
      param: null,
      code: 'server_shutting_down'
    }
  })
  upload.req.destroy()
  await closing
  t.same(await listBlobs(server.dataDir), [], 'no object and no temp file')
  t.same(await rowsAfterClose(t, server), [], 'no row')
})

t.test('a stall between two parts is abandoned too', async (t) => {
  const server = await startServer(t, { SHUTDOWN_TIMEOUT_MS: '200' })
  const upload = manualUpload(server.url, { authorization: `Bearer ${KEY_A}` })
  // The whole file part and the next boundary, then nothing: the pipeline has read the
  // file to its end and waits for the next part's headers.
  await upload.write(Buffer.concat([half, Buffer.from(`\r\n--${BOUNDARY}\r\n`)]))
  await sleep(100)
  const closing = server.app.close()
  const res = await upload.response
  t.equal(res.status, 503)
  t.equal(JSON.parse(res.body).error.code, 'server_shutting_down')
  upload.req.destroy()
  await closing
  t.same(await listBlobs(server.dataDir), [])
  t.same(await rowsAfterClose(t, server), [])
})
