/**
 * The client side: uploads streamed from disk as multipart/form-data over a real socket
 * (with a Content-Length, as curl and the SDKs send), and downloads read to the end.
 */
import { once } from 'node:events'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { request, type IncomingMessage } from 'node:http'
import { API_KEY } from './server.js'

const BOUNDARY = 'bench-boundary-5f1c2a'

export interface UploadResult {
  id: string
  bytes: number
  ms: number
}

export type Purpose = 'batch' | 'user_data'

/**
 * POST /v1/files with `purpose` first, then `file`. Purpose first is what lets the
 * server skip validation for user_data; sent after the file, the purpose is unknown
 * while the bytes stream and the server validates them as a possible batch file.
 */
export async function upload (baseUrl: string, source: string | Buffer, purpose: Purpose, filename = 'bench.jsonl', key = API_KEY): Promise<UploadResult> {
  const head = Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n${purpose}\r\n` +
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/jsonl\r\n\r\n`)
  const tail = Buffer.from(`\r\n--${BOUNDARY}--\r\n`)
  const size = typeof source === 'string' ? (await stat(source)).size : source.length
  const started = performance.now()
  const req = request(`${baseUrl}/v1/files`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${key}`,
      'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
      'content-length': head.length + size + tail.length
    }
  })
  // Rejects on a socket error, which also ends the write loop below.
  const response = once(req, 'response') as Promise<[IncomingMessage]>
  response.catch(() => {})
  try {
    req.write(head)
    if (typeof source === 'string') {
      for await (const chunk of createReadStream(source, { highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>) {
        if (!req.write(chunk)) await Promise.race([once(req, 'drain'), response])
      }
    } else {
      req.write(source)
    }
    req.end(tail)
  } catch (err) {
    req.destroy()
    throw err
  }
  const [res] = await response
  const text = await readText(res)
  const ms = performance.now() - started
  if (res.statusCode !== 200) throw new Error(`upload answered ${res.statusCode}: ${text.slice(0, 500)}`)
  const file = JSON.parse(text) as { id: string, bytes: number }
  if (file.bytes !== size) throw new Error(`stored ${file.bytes} bytes of ${size}`)
  return { id: file.id, bytes: size, ms }
}

/** GET /v1/files/{id}/content, read to the end. */
export async function download (baseUrl: string, id: string): Promise<{ bytes: number, ms: number }> {
  const started = performance.now()
  const req = request(`${baseUrl}/v1/files/${id}/content`, { headers: { authorization: `Bearer ${API_KEY}` } })
  req.end()
  const [res] = await once(req, 'response') as [IncomingMessage]
  if (res.statusCode !== 200) throw new Error(`content answered ${res.statusCode}: ${(await readText(res)).slice(0, 500)}`)
  let bytes = 0
  for await (const chunk of res as AsyncIterable<Buffer>) bytes += chunk.length
  return { bytes, ms: performance.now() - started }
}

export async function deleteFile (baseUrl: string, id: string): Promise<void> {
  const res = await fetch(`${baseUrl}/v1/files/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${API_KEY}` } })
  if (!res.ok) throw new Error(`delete answered ${res.status}: ${await res.text()}`)
}

async function readText (res: IncomingMessage): Promise<string> {
  let text = ''
  for await (const chunk of res as AsyncIterable<Buffer>) text += chunk.toString()
  return text
}
