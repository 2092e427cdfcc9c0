import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { UPLOAD_OUTCOMES } from '../../../src/upload/outcome.js'
import { sample } from '../../operations/helpers/prometheus.js'
import { BOUNDARY, multipartBody, type Part } from '../../helpers/multipart.js'

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
}

/**
 * One HTTP/1.1 connection driven byte by byte: a client that stops mid-body, sends a
 * header a byte a second or disappears inside a UTF-8 character is not something
 * node:http or fetch can be made to be. Responses are parsed as they arrive.
 */
export interface RawConnection {
  socket: Socket
  /** Writes; false when the connection is already gone (the server cut it). */
  write: (data: Buffer | string) => Promise<boolean>
  /** The `index`-th response on this connection, or null when it closed before one. */
  response: (index?: number) => Promise<RawResponse | null>
  /** Milliseconds from connecting until the connection closed (either side). */
  closed: Promise<number>
}

export async function openRaw (url: string): Promise<RawConnection> {
  const { hostname, port } = new URL(url)
  const socket = connect(Number(port), hostname)
  socket.on('error', () => {})
  await once(socket, 'connect')
  const opened = Date.now()
  let received = Buffer.alloc(0)
  let ended = false
  const responses: RawResponse[] = []
  const waiters = new Set<() => void>()
  const parse = (): void => {
    for (let next = parseResponses(received, ended); responses.length < next.length;) responses.push(next[responses.length] as RawResponse)
    const woken = [...waiters]
    waiters.clear()
    for (const wake of woken) wake()
  }
  socket.on('data', (chunk: Buffer) => { received = Buffer.concat([received, chunk]); parse() })
  const closed = new Promise<number>((resolve) => {
    socket.once('close', () => { ended = true; parse(); resolve(Date.now() - opened) })
  })
  return {
    socket,
    write: async (data) => {
      if (socket.destroyed || !socket.writable) return false
      return await new Promise<boolean>((resolve) => { socket.write(data, (error) => { resolve(error == null) }) })
    },
    response: async (index = 0) => {
      while (responses.length <= index && !ended) await new Promise<void>((resolve) => { waiters.add(resolve) })
      return responses[index] ?? null
    },
    closed
  }
}

/** The complete responses in `data`; one without Content-Length ends with the connection. */
function parseResponses (data: Buffer, ended: boolean): RawResponse[] {
  const out: RawResponse[] = []
  let offset = 0
  while (offset < data.length) {
    const headEnd = data.indexOf('\r\n\r\n', offset)
    if (headEnd === -1) break
    const [statusLine = '', ...lines] = data.subarray(offset, headEnd).toString('latin1').split('\r\n')
    const headers: Record<string, string> = {}
    for (const line of lines) {
      const colon = line.indexOf(':')
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
    }
    const length = headers['content-length'] === undefined ? undefined : Number(headers['content-length'])
    const bodyStart = headEnd + 4
    if (length === undefined && !ended) break
    const bodyEnd = length === undefined ? data.length : bodyStart + length
    if (bodyEnd > data.length) break
    out.push({ status: Number(statusLine.split(' ')[1]), headers, body: data.subarray(bodyStart, bodyEnd).toString('utf8') })
    offset = bodyEnd
  }
  return out
}

/** The whole multipart body, as bytes (to cut it anywhere). */
export async function multipartBytes (parts: Part[]): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of multipartBody(parts)) chunks.push(chunk)
  return Buffer.concat(chunks)
}

/** The request head of an upload; without `contentLength` the body goes chunked. */
export function uploadHead (key: string, contentLength?: number, path = '/v1/files'): string {
  const framing = contentLength === undefined ? 'Transfer-Encoding: chunked' : `Content-Length: ${contentLength}`
  return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\n` +
    `Content-Type: multipart/form-data; boundary=${BOUNDARY}\r\n${framing}\r\n\r\n`
}

/** One HTTP/1.1 chunk of a chunked body. */
export function chunk (data: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')])
}

/** Sends a whole upload on a fresh connection and returns the answer. */
export async function rawUpload (url: string, key: string, body: Buffer): Promise<RawResponse | null> {
  const connection = await openRaw(url)
  await connection.write(uploadHead(key, body.length))
  await connection.write(body)
  const response = await connection.response()
  connection.socket.destroy()
  return response
}

/**
 * Upload outcomes the service counted (files_api_uploads_total, all outcomes): the route
 * counts an upload only after the pipeline cleaned up, so waiting for the count to move
 * is waiting for the server to have finished with a request.
 */
export async function uploadsCounted (url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  let total = 0
  for (const outcome of UPLOAD_OUTCOMES) {
    total += sample(text, 'files_api_uploads_total', { outcome }) ?? 0
  }
  return total
}

export async function waitForUploadsCounted (url: string, count: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (let seen = await uploadsCounted(url); seen < count; seen = await uploadsCounted(url)) {
    if (Date.now() > deadline) throw new Error(`the server counted ${seen} uploads, not ${count}, within ${timeoutMs} ms`)
    await sleep(20)
  }
}
