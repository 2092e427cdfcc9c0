import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http'
import type { TestServer } from '../../helpers/app.js'
import { BOUNDARY, type Part } from '../../helpers/multipart.js'

export function line (customId: string): string {
  return JSON.stringify({
    custom_id: customId,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'ops-test-model', messages: [{ role: 'user', content: `hello ${customId}` }] }
  })
}

/** A valid batch file of `count` lines. */
export function batch (count: number): Buffer {
  return Buffer.from(Array.from({ length: count }, (_, i) => line(String(i + 1))).join('\n') + '\n')
}

export const filePart = (content: Buffer, filename = 'batch.jsonl'): Part => ({ name: 'file', filename, content })
export const purpose = (value: string): Part => ({ name: 'purpose', value })

/** The rows of a project, expired ones included. */
export async function rowsOf (server: TestServer, project: string): Promise<string[]> {
  return (await server.app.fileStore.list({ project, limit: 1000, order: 'asc', now: 0 })).files.map((f) => f.id)
}

export interface ManualUpload {
  req: ClientRequest
  /** Resolves with the answer (status, headers, body) once the server responds. */
  response: Promise<{ status: number, headers: IncomingMessage['headers'], body: string }>
  /** Writes more of the file's bytes. */
  write: (chunk: Buffer) => Promise<void>
  /** Writes the rest of the body (end of the file part, purpose, closing boundary). */
  finish: () => void
}

/**
 * An upload whose body is sent by hand over a real socket: the head (purpose, then the
 * file part's headers) at once, the file's bytes when the test says. Keeps the socket
 * of its own (no keep-alive agent), as a separate client would.
 */
export function manualUpload (url: string, headers: Record<string, string>, purposeValue = 'batch'): ManualUpload {
  const req = httpRequest(`${url}/v1/files`, {
    method: 'POST',
    agent: false,
    headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, ...headers }
  })
  const response = new Promise<{ status: number, headers: IncomingMessage['headers'], body: string }>((resolve, reject) => {
    req.on('response', (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }) })
      res.on('error', reject)
    })
    req.on('error', reject)
  })
  response.catch(() => {})
  req.write(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n${purposeValue}\r\n` +
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="slow.jsonl"\r\nContent-Type: application/octet-stream\r\n\r\n`)
  return {
    req,
    response,
    write: async (chunk) => new Promise<void>((resolve, reject) => { req.write(chunk, (error) => { if (error == null) resolve(); else reject(error) }) }),
    finish: () => { req.end(`\r\n--${BOUNDARY}--\r\n`) }
  }
}
