/**
 * The HTTP client the batch engine sends lines with (issue 10 item 2): one undici `Pool`
 * of keep-alive connections per upstream origin, so a 50,000-line batch opens a few
 * sockets, not 50,000. Base URLs that share an origin (`http://gw/a/v1`, `http://gw/b/v1`)
 * share its pool: the pool is about sockets, and sockets are per origin.
 *
 * An outcome is a value, never a throw: the caller hands every outcome to the retry
 * policy (retry-policy.ts), and a transport failure is as ordinary there as a 503.
 * - connect, headers and body timeouts are the pool's (a stalled upstream fails one
 *   request, never hangs a lease);
 * - the caller's AbortSignal goes to undici, which destroys the socket of a request in
 *   flight (HTTP/1.1 has no other way to cancel), so a cancelled batch stops the work
 *   on the upstream's side too;
 * - the answer is read up to `maxResponseBytes`; past that the body is destroyed (and
 *   with it the socket) and the outcome is `response_too_large`, so one runaway answer
 *   cannot take the replica's memory;
 * - `Authorization: Bearer <key>` is added when a key is given. The key lives only in
 *   this closure; nothing here logs headers.
 */
import { Pool } from 'undici'
import type { UpstreamBase } from './upstream-url.js'
import { upstreamPath } from './upstream-url.js'

export interface UpstreamClientOptions {
  /** Secret; sent as a bearer token, never logged. */
  readonly apiKey?: string | undefined
  /** Sockets per origin (the pool's ceiling; the engine's concurrency bound sits above it). */
  readonly connections: number
  readonly connectTimeoutMs: number
  /** Time to the response's headers: what a slow model's first token is judged by. */
  readonly headersTimeoutMs: number
  /** Longest silence between body chunks. */
  readonly bodyTimeoutMs: number
  /** Idle keep-alive sockets are closed after this (the upstream's own idle timeout should be longer). */
  readonly keepAliveTimeoutMs: number
  /** The largest answer read; a larger one is `response_too_large`. */
  readonly maxResponseBytes: number
}

export const DEFAULT_UPSTREAM_CLIENT_OPTIONS: UpstreamClientOptions = {
  connections: 64,
  connectTimeoutMs: 10_000,
  headersTimeoutMs: 600_000,
  bodyTimeoutMs: 120_000,
  keepAliveTimeoutMs: 4_000,
  maxResponseBytes: 16 * 1024 * 1024
}

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

export type TransportErrorCode =
  | 'connect_refused'
  | 'connect_timeout'
  | 'headers_timeout'
  | 'body_timeout'
  | 'connection_reset'
  | 'response_too_large'
  | 'aborted'
  | 'transport_error'

export type UpstreamOutcome =
  | {
    readonly kind: 'response'
    readonly status: number
    /** `x-request-id`, for the result line's `response.request_id`. */
    readonly requestId: string | null
    /** Raw `Retry-After`, parsed by the policy (seconds or an HTTP date). */
    readonly retryAfter: string | null
    /** The parsed JSON answer, or its text when it is not JSON (a proxy's HTML 502). */
    readonly body: JsonValue
    readonly bodyIsJson: boolean
  }
  | { readonly kind: 'transport', readonly code: TransportErrorCode, readonly message: string }

export interface UpstreamRequest {
  readonly method: 'POST'
  /** The batch line's url, e.g. `/v1/chat/completions`. */
  readonly url: string
  readonly body: unknown
  readonly signal?: AbortSignal
}

export interface UpstreamClients {
  send: (base: UpstreamBase, request: UpstreamRequest) => Promise<UpstreamOutcome>
  close: () => Promise<void>
}

function headerValue (value: string | string[] | undefined): string | null {
  if (value === undefined) return null
  return Array.isArray(value) ? (value[0] ?? null) : value
}

function errorCode (err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const code = 'code' in err ? err.code : undefined
  if (typeof code === 'string') return code
  // A connect failure may arrive wrapped (AggregateError from happy-eyeballs, or a cause).
  const cause = 'cause' in err ? err.cause : undefined
  if (cause !== undefined && cause !== err) return errorCode(cause)
  if (err instanceof AggregateError) return errorCode(err.errors[0])
  return undefined
}

/** Map undici's and the socket's error codes onto the few the retry policy tells apart. */
export function classifyTransportError (err: unknown, signal?: AbortSignal): { code: TransportErrorCode, message: string } {
  const message = err instanceof Error ? err.message : String(err)
  if (signal?.aborted === true) return { code: 'aborted', message: 'request aborted by the caller' }
  switch (errorCode(err)) {
    case 'ECONNREFUSED': return { code: 'connect_refused', message }
    case 'UND_ERR_CONNECT_TIMEOUT': case 'ETIMEDOUT': return { code: 'connect_timeout', message }
    case 'UND_ERR_HEADERS_TIMEOUT': return { code: 'headers_timeout', message }
    case 'UND_ERR_BODY_TIMEOUT': return { code: 'body_timeout', message }
    case 'ECONNRESET': case 'EPIPE': case 'UND_ERR_SOCKET': case 'UND_ERR_CLOSED':
      return { code: 'connection_reset', message }
    case 'UND_ERR_ABORTED': return { code: 'aborted', message }
    default: return { code: 'transport_error', message }
  }
}

class TooLargeError extends Error {}

type Body = AsyncIterable<Buffer> & { destroy: (err?: Error) => unknown, on: (event: 'error', listener: () => void) => unknown }

/**
 * Destroying an unfinished body makes undici drop the socket rather than drain it. The
 * body then emits the abort as an 'error': it is ours, so it is swallowed here rather
 * than left unhandled.
 */
function discard (body: Body): void {
  body.on('error', () => {})
  body.destroy()
}

async function readBounded (body: Body, max: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += chunk.length
    if (size > max) {
      discard(body)
      throw new TooLargeError(`answer exceeds ${max} bytes`)
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, size)
}

export function createUpstreamClients (options: UpstreamClientOptions): UpstreamClients {
  const pools = new Map<string, Pool>()
  let closed = false

  function poolFor (origin: string): Pool {
    let pool = pools.get(origin)
    if (pool === undefined) {
      pool = new Pool(origin, {
        connections: options.connections,
        pipelining: 1,
        connect: { timeout: options.connectTimeoutMs },
        headersTimeout: options.headersTimeoutMs,
        bodyTimeout: options.bodyTimeoutMs,
        keepAliveTimeout: options.keepAliveTimeoutMs
      })
      pools.set(origin, pool)
    }
    return pool
  }

  async function send (base: UpstreamBase, request: UpstreamRequest): Promise<UpstreamOutcome> {
    if (closed) return { kind: 'transport', code: 'transport_error', message: 'upstream client is closed' }
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' }
    if (options.apiKey !== undefined && options.apiKey !== '') headers.authorization = `Bearer ${options.apiKey}`
    try {
      const res = await poolFor(base.origin).request({
        method: request.method,
        path: upstreamPath(base, request.url),
        headers,
        body: JSON.stringify(request.body),
        ...(request.signal === undefined ? {} : { signal: request.signal })
      })
      const declared = Number(headerValue(res.headers['content-length']) ?? Number.NaN)
      if (declared > options.maxResponseBytes) {
        discard(res.body)
        throw new TooLargeError(`answer of ${declared} bytes exceeds ${options.maxResponseBytes}`)
      }
      const raw = await readBounded(res.body, options.maxResponseBytes)
      const text = raw.toString('utf8')
      let body: JsonValue = text
      let bodyIsJson = false
      try {
        body = JSON.parse(text) as JsonValue
        bodyIsJson = true
      } catch {}
      return {
        kind: 'response',
        status: res.statusCode,
        requestId: headerValue(res.headers['x-request-id']),
        retryAfter: headerValue(res.headers['retry-after']),
        body,
        bodyIsJson
      }
    } catch (err) {
      if (err instanceof TooLargeError) return { kind: 'transport', code: 'response_too_large', message: err.message }
      return { kind: 'transport', ...classifyTransportError(err, request.signal) }
    }
  }

  async function close (): Promise<void> {
    closed = true
    const all = [...pools.values()]
    pools.clear()
    await Promise.all(all.map(async (pool) => { await pool.close() }))
  }

  return { send, close }
}
