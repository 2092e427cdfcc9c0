import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { Readable } from 'node:stream'

export type Part =
  | { name: string, value: string }
  | { name: string, filename: string | null, content: Buffer | Iterable<Buffer> | AsyncIterable<Buffer>, contentType?: string }

export const BOUNDARY = '----files-api-test-boundary-7MA4YWxkTrZu0gW'

/** The multipart/form-data body as an async iterable of chunks, so large bodies stream. */
export async function * multipartBody (parts: Part[], boundary = BOUNDARY): AsyncGenerator<Buffer> {
  for (const part of parts) {
    if ('value' in part) {
      yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"\r\n\r\n${part.value}\r\n`)
      continue
    }
    const filename = part.filename === null ? '' : `; filename="${part.filename}"`
    yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"${filename}\r\nContent-Type: ${part.contentType ?? 'application/octet-stream'}\r\n\r\n`)
    if (Buffer.isBuffer(part.content)) yield part.content
    else for await (const chunk of part.content) yield chunk
    yield Buffer.from('\r\n')
  }
  yield Buffer.from(`--${boundary}--\r\n`)
}

export interface RawResponse {
  status: number
  headers: IncomingHttpHeaders
  body: string
  json: () => any
}

/**
 * POSTs over a real socket with node:http, chunked (no Content-Length, as the openai
 * SDK often sends), so limits and streaming behave as in production.
 */
export async function postMultipart (url: string, parts: Part[], options: { key?: string, headers?: Record<string, string>, boundary?: string } = {}): Promise<RawResponse> {
  const headers: Record<string, string> = {
    'content-type': `multipart/form-data; boundary=${options.boundary ?? BOUNDARY}`,
    ...(options.key === undefined ? {} : { authorization: `Bearer ${options.key}` }),
    ...options.headers
  }
  return send(url, 'POST', headers, Readable.from(multipartBody(parts, options.boundary)))
}

export async function send (url: string, method: string, headers: Record<string, string>, body?: Readable | Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json: () => JSON.parse(text) })
      })
      res.on('error', reject)
    })
    // The server may answer (413, 400) and close before the whole body is sent: that is
    // a response, not a failure of the test.
    req.on('error', reject)
    if (body === undefined) req.end()
    else if (Buffer.isBuffer(body)) req.end(body)
    else {
      body.on('error', (error) => req.destroy(error))
      body.pipe(req)
      req.on('close', () => body.destroy())
    }
  })
}

export async function getJson (url: string, key?: string): Promise<RawResponse> {
  return send(url, 'GET', key === undefined ? {} : { authorization: `Bearer ${key}` })
}
