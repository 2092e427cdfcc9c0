import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { ERRORS } from '../../src/errors.js'
import { KEY_A, listBlobs, startServer, type TestServer } from '../helpers/app.js'
import { BOUNDARY } from '../helpers/multipart.js'
import { multipartBytes } from '../faults/helpers/raw-http.js'
import { batch, filePart, purpose, rowsOf } from '../operations/helpers/batch.js'

const WRONG_KEY = 'sk-not-a-key-of-anyone-000'

/** A connection read as raw text: 100 Continue and the final answer as they arrive. */
interface Raw {
  socket: Socket
  text: () => string
  /** Waits until the received text matches, or the connection closed. */
  until: (pattern: RegExp) => Promise<string>
  /** Milliseconds from connecting until the connection closed. */
  closed: Promise<number>
}

async function openRaw (url: string): Promise<Raw> {
  const { hostname, port } = new URL(url)
  // Half-open allowed: a client that keeps sending after the server's FIN (net's default
  // would answer the FIN with its own and stop).
  const socket = connect({ port: Number(port), host: hostname, allowHalfOpen: true })
  socket.on('error', () => {})
  await once(socket, 'connect')
  const opened = Date.now()
  let received = ''
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
  const closed = new Promise<number>((resolve) => { socket.once('close', () => { resolve(Date.now() - opened) }) })
  let ended = false
  void closed.then(() => { ended = true })
  return {
    socket,
    text: () => received,
    until: async (pattern) => {
      while (!pattern.test(received) && !ended) await sleep(5)
      return received
    },
    closed
  }
}

function head (key: string, contentLength: number, extra = ''): string {
  return `POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\n` +
    `Content-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: ${contentLength}\r\n${extra}\r\n`
}

/** The body of the one answer in `text` (after any 100 Continue). */
function finalAnswer (text: string): { status: number, connection: string | undefined, body: unknown } {
  const start = text.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '')
  const [headBlock = '', body = ''] = start.split('\r\n\r\n')
  return {
    status: Number(headBlock.split(' ')[1]),
    connection: /\r\nconnection: ([^\r]*)/i.exec(headBlock)?.[1],
    body: JSON.parse(body)
  }
}

/** When the server's end of the first connection closed (the client, half-open, cannot tell). */
async function serverSideClosed (server: TestServer): Promise<number> {
  const [socket] = await once(server.app.server, 'connection') as [Socket]
  await once(socket, 'close')
  return Date.now()
}

/** Bytes each connection had read from its client when it closed, server side. */
function bytesReadAtClose (server: TestServer): number[] {
  const seen: number[] = []
  server.app.server.on('connection', (socket: Socket) => { socket.once('close', () => { seen.push(socket.bytesRead) }) })
  return seen
}

/** Writes 64 KiB at a time, `pauseMs` apart, until the server cuts the connection. */
async function sendForever (socket: Socket, pauseMs: number, chunkBytes: number): Promise<number> {
  const chunk = Buffer.alloc(chunkBytes, 0x61)
  let written = 0
  while (!socket.destroyed && socket.writable) {
    const ok = await new Promise<boolean>((resolve) => { socket.write(chunk, (error) => { resolve(error == null) }) })
    if (!ok) break
    written += chunk.length
    if (pauseMs > 0) await sleep(pauseMs)
  }
  return written
}

const unauthorized = { status: 401, connection: 'close', body: { error: ERRORS.invalidApiKey().toErrorObject() } }

t.test('a client that keeps sending after a refusal is cut after LINGER_MAX_BYTES', async (t) => {
  const server = await startServer(t, { LINGER_MAX_BYTES: String(1024 * 1024), LINGER_TIMEOUT_MS: '20000' })
  const readAtClose = bytesReadAtClose(server)
  const raw = await openRaw(server.url)
  raw.socket.write(head(WRONG_KEY, 1024 ** 3))
  const written = await sendForever(raw.socket, 0, 64 * 1024)
  const closedAfter = await raw.closed
  t.same(finalAnswer(await raw.until(/\r\n\r\n\{.*\}$/s)), unauthorized, 'the answer arrived whole')
  t.ok(closedAfter < 10_000, `cut by the byte bound, not the 20 s timeout (${closedAfter} ms)`)
  t.ok(written >= 1024 * 1024, `the client could send the bound (${written} bytes)`)
  await sleep(50)
  t.equal(readAtClose.length, 1)
  // One read of the socket past the bound at most (64 KiB), plus the request head.
  t.ok((readAtClose[0] ?? Infinity) <= 1024 * 1024 + 64 * 1024 + 1024, `the server read ${readAtClose[0]} bytes`)
})

t.test('a client that trickles forever after a refusal is cut after LINGER_TIMEOUT_MS', async (t) => {
  const server = await startServer(t, { LINGER_MAX_BYTES: String(100 * 1024 * 1024), LINGER_TIMEOUT_MS: '1000' })
  const raw = await openRaw(server.url)
  raw.socket.write(head(WRONG_KEY, 1024 ** 3))
  const sending = sendForever(raw.socket, 50, 1024)
  t.same(finalAnswer(await raw.until(/\r\n\r\n\{.*\}$/s)), unauthorized)
  const answeredAt = Date.now()
  await raw.closed
  await sending
  const lingered = Date.now() - answeredAt
  t.ok(lingered >= 900 && lingered < 3000, `closed ${lingered} ms after the answer`)
})

t.test('a refused upload whose body then ends closes at once, not after the timeout', async (t) => {
  const server = await startServer(t, { LINGER_TIMEOUT_MS: '20000' })
  const body = await multipartBytes([purpose('batch'), filePart(batch(9000))])
  const closed = serverSideClosed(server)
  const raw = await openRaw(server.url)
  const sent = Date.now()
  raw.socket.write(head(WRONG_KEY, body.length))
  raw.socket.write(body)
  const closedAfter = await closed - sent
  t.same(finalAnswer(await raw.until(/\r\n\r\n\{.*\}$/s)), unauthorized)
  t.ok(closedAfter < 5000, `the server closed ${closedAfter} ms after the request was sent`)
  raw.socket.destroy()
})

t.test('LINGER_MAX_BYTES=0: the connection closes right after the answer, as without lingering', async (t) => {
  const server = await startServer(t, { LINGER_MAX_BYTES: '0', LINGER_TIMEOUT_MS: '20000' })
  const raw = await openRaw(server.url)
  raw.socket.write(head(WRONG_KEY, 1024 ** 3))
  void sendForever(raw.socket, 20, 1024)
  const closedAfter = await raw.closed
  t.same(finalAnswer(raw.text()), unauthorized)
  t.ok(closedAfter < 5000, `closed ${closedAfter} ms after connecting`)
})

t.test('Expect: 100-continue is answered with the refusal itself, and no body is sent', async (t) => {
  const server = await startServer(t, { PROJECT_MAX_FILES: '1', LINGER_TIMEOUT_MS: '20000' })
  const rejected = await openRaw(server.url)
  rejected.socket.write(head(WRONG_KEY, 1_300_000, 'Expect: 100-continue\r\n'))
  const text = await rejected.until(/\r\n\r\n\{.*\}$/s)
  t.match(text, /^HTTP\/1\.1 401 /, 'the first bytes are the refusal: no 100 Continue')
  t.same(finalAnswer(text), unauthorized)
  // The client sent no body: closing its side ends the lingering at once.
  const closing = Date.now()
  rejected.socket.end()
  await rejected.closed
  t.ok(Date.now() - closing < 2000, 'the server closed when the client did')

  // Accepted: 100 Continue comes before a byte of the body is sent, then the upload is stored.
  const body = await multipartBytes([purpose('batch'), filePart(batch(3))])
  const accepted = await openRaw(server.url)
  accepted.socket.write(head(KEY_A, body.length, 'Expect: 100-continue\r\n'))
  t.equal(await accepted.until(/\r\n\r\n/), 'HTTP/1.1 100 Continue\r\n\r\n')
  accepted.socket.write(body)
  const stored = finalAnswer(await accepted.until(/\r\n\r\n\{.*\}$/s))
  t.equal(stored.status, 200)
  t.equal((stored.body as { bytes: number }).bytes, batch(3).length)
  accepted.socket.destroy()
  t.equal((await rowsOf(server, 'project-a')).length, 1)

  // The quota is checked in the route, after auth: still before the body, so still no 100.
  const overQuota = await openRaw(server.url)
  overQuota.socket.write(head(KEY_A, body.length, 'Expect: 100-continue\r\n'))
  const quotaText = await overQuota.until(/\r\n\r\n\{.*\}$/s)
  t.match(quotaText, /^HTTP\/1\.1 403 /)
  t.same(finalAnswer(quotaText).body, { error: ERRORS.quotaExceeded('the project already has 1 files, the most it may have is 1.').toErrorObject() })
  overQuota.socket.destroy()
  t.equal((await listBlobs(server.dataDir)).length, 1, 'only the accepted upload is stored')
})
