import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { ErrorResponse } from '../../schemas/errors.js'

const ANSWERS: Record<string, { status: number, code: string, message: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, code: 'request_timeout', message: 'The request headers did not arrive in time (HEADERS_TIMEOUT_MS).' },
  HPE_HEADER_OVERFLOW: { status: 431, code: 'request_header_fields_too_large', message: 'The request line and headers exceed 16 KiB or 1000 fields.' }
}
const MALFORMED = { status: 400, code: 'malformed_request', message: 'The HTTP request could not be parsed.' }
// Nothing else goes in this header block: keep it in step with plugins/security-headers.ts.
const HEADERS = 'Content-Type: application/json; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nConnection: close'

/**
 * Node's parser refuses some requests before Fastify sees them (slow or oversized
 * headers, a malformed request line). Fastify's default answer has a shape of its own;
 * this one answers in OpenAI's error shape, the only one that can apply before the
 * request's route family is known. Mirrors Fastify's defaultClientErrorHandler otherwise.
 */
export function clientErrorHandler (error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const answer = ANSWERS[error.code ?? ''] ?? MALFORMED
  const body: ErrorResponse = { error: { message: answer.message, type: 'invalid_request_error', param: null, code: answer.code } }
  const text = JSON.stringify(body)
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? ''}\r\n${HEADERS}\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`)
  }
  socket.destroy(error)
}
