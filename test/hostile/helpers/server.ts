import { connect } from 'node:net'
import type { Test } from 'tap'
import { KEY_A, listBlobs, type TestServer } from '../../helpers/app.js'
import { getJson, type RawResponse } from '../../helpers/multipart.js'

export const FAMILIES = ['/v1', '/api/v1'] as const
export type Family = typeof FAMILIES[number]

export interface ErrorBody { message: string, type: string, param: string | null, code: string | null }

/**
 * Asserts `res` is a `status` answer in `family`'s error shape (bare OpenAI error, or the
 * envelope around it) and returns the error object.
 */
export function familyError (t: Test, res: RawResponse, family: Family, status: number, code: string, what: string): ErrorBody {
  t.equal(res.status, status, `${what}: status`)
  let body: unknown
  try {
    body = res.json()
  } catch {
    t.fail(`${what}: a JSON body`, { body: res.body.slice(0, 200) })
    return { message: '', type: '', param: null, code: null }
  }
  const error = (family === '/v1' ? (body as { error?: ErrorBody }).error : (body as { data?: { error?: ErrorBody } }).data?.error) ?? { message: '', type: '', param: null, code: null }
  if (family === '/api/v1') {
    const envelope = body as { success?: unknown, code?: unknown, message?: unknown }
    t.same({ success: envelope.success, code: envelope.code, message: envelope.message }, { success: false, code: String(status), message: error.message }, `${what}: the envelope`)
  } else {
    t.same(Object.keys(body as object), ['error'], `${what}: OpenAI's bare error`)
  }
  t.equal(error.code, code, `${what}: code`)
  t.equal(error.type, status >= 500 ? 'server_error' : 'invalid_request_error', `${what}: type`)
  t.type(error.message, 'string')
  t.ok(error.message.length < 1000, `${what}: a message of ${error.message.length} characters`)
  return error
}

/** Nothing stored: no object or temp file, no row in either test project. */
export async function assertNothingStored (t: Test, server: TestServer, what: string): Promise<void> {
  t.same(await listBlobs(server.dataDir), [], `${what}: no object or temp file`)
  for (const project of ['project-a', 'project-b']) {
    const rows = await server.app.fileStore.list({ project, limit: 10, order: 'asc', now: 0 })
    t.same(rows.files.map((f) => f.id), [], `${what}: no row in ${project}`)
  }
}

/** The server still answers: liveness, and an authenticated read through the whole stack. */
export async function assertHealthy (t: Test, server: TestServer, what: string): Promise<void> {
  t.equal((await getJson(`${server.url}/health`)).status, 200, `${what}: /health answers`)
  t.equal((await getJson(`${server.url}/v1/files`, KEY_A)).status, 200, `${what}: /v1/files answers`)
}

/**
 * Writes `head` (and `body`) on a raw socket, half-closing it with `end`, and reads
 * whatever comes back until the server closes or `timeoutMs` passes: for requests
 * node:http refuses to send.
 */
export async function rawExchange (url: string, head: string, body: Buffer = Buffer.alloc(0),
  options: { timeoutMs?: number, end?: boolean } = {}): Promise<{ status: number, text: string }> {
  const timeoutMs = options.timeoutMs ?? 5000
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname)
    const chunks: Buffer[] = []
    const done = (): void => {
      clearTimeout(timer)
      socket.destroy()
      const text = Buffer.concat(chunks).toString('utf8')
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text })
    }
    const timer = setTimeout(done, timeoutMs)
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      // One answer is all a test needs; keep-alive would otherwise hold the socket open.
      const text = Buffer.concat(chunks).toString('latin1')
      const end = text.indexOf('\r\n\r\n')
      const length = /\r\ncontent-length: (\d+)/i.exec(text)?.[1]
      if (end !== -1 && length !== undefined && Buffer.byteLength(text, 'latin1') >= end + 4 + Number(length)) done()
    })
    socket.on('end', done)
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // The server may close on us after answering (413, 431): what it said still counts.
      if (chunks.length > 0 || error.code === 'ECONNRESET' || error.code === 'EPIPE') done()
      else reject(error)
    })
    socket.write(head)
    if (body.length > 0) socket.write(body)
    if (options.end === true) socket.end()
  })
}

/** The JSON body of a raw HTTP/1.1 answer. */
export function rawJson (text: string): unknown {
  return JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))
}
