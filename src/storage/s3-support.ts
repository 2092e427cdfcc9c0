import { S3ServiceException, type S3ClientConfig } from '@aws-sdk/client-s3'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import type { Readable } from 'node:stream'
import { StorageFullError, StorageTimeoutError } from './blob-store.js'

/** The S3 driver's client settings and its reading of S3's answers and errors. */

const DEFAULT_CONNECT_TIMEOUT_MS = 5000
const DEFAULT_REQUEST_TIMEOUT_MS = 60_000
const NOT_FOUND_NAMES = new Set(['NoSuchKey', 'NotFound'])
const FULL_NAMES = new Set(['EntityTooLarge', 'InsufficientStorage', 'QuotaExceeded'])

/** Where the S3 server is, who we are to it, and how long we wait for it. */
export interface S3ConnectionOptions {
  endpoint?: string
  region?: string
  accessKeyId?: string
  secretAccessKey?: string
  forcePathStyle?: boolean
  /** Longest wait for a TCP connection to S3 (default 5 s). */
  connectTimeoutMs?: number
  /**
   * Longest an S3 request may take until S3 answers, its body included (a part upload),
   * and longest a connection may stay silent meanwhile (default 60 s). The SDK retries a
   * timed-out request twice, so a stalled store fails an operation after about 3×.
   */
  requestTimeoutMs?: number
}

export function clientConfig (opts: S3ConnectionOptions): S3ClientConfig {
  const config: S3ClientConfig = {
    region: opts.region ?? 'us-east-1',
    forcePathStyle: opts.forcePathStyle ?? Boolean(opts.endpoint),
    // With the SDK defaults a streamed body goes out aws-chunked with a trailing checksum,
    // which s3rver and other look-alikes store verbatim: a corrupt object. lib-storage
    // sends Buffers today, so this guards against that changing and against any server
    // that refuses the flexible-checksum headers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // The SDK's defaults wait forever: a store that stops answering (a dead host whose
    // SYNs go unanswered, a server that stalls mid-part) would hold an upload, its client
    // and its memory until the client gave up. requestTimeout only warns unless
    // throwOnRequestTimeout is set; socketTimeout also covers a stalled download.
    requestHandler: new NodeHttpHandler({
      connectionTimeout: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      requestTimeout: opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      throwOnRequestTimeout: true,
      socketTimeout: opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    })
  }
  if (opts.endpoint !== undefined) config.endpoint = opts.endpoint
  if (opts.accessKeyId !== undefined && opts.secretAccessKey !== undefined) {
    config.credentials = { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey }
  }
  return config
}

/**
 * Maps S3 answers that mean "no room" to StorageFullError and the client's timeouts
 * (connect, request, idle socket; the SDK names them all TimeoutError) to
 * StorageTimeoutError; anything else is unchanged.
 */
export function toStorageError (err: unknown): unknown {
  const name = errorName(err)
  if ((name !== undefined && FULL_NAMES.has(name)) || httpStatus(err) === 507) {
    return new StorageFullError(`S3 storage refused the object as too large or full (${name ?? 'HTTP 507'})`, { cause: err })
  }
  if (name === 'TimeoutError') {
    return new StorageTimeoutError(`S3 storage did not answer in time: ${err instanceof Error ? err.message : ''}`, { cause: err })
  }
  return err
}

// A call, not `signal?.aborted`, so TypeScript does not assume the flag stays as first read.
export function isAborted (signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true
}

export function abortError (signal: AbortSignal | undefined): Error {
  const err = new Error('put aborted', { cause: signal?.reason })
  err.name = 'AbortError'
  return err
}

/** What the server sent: `Content-Range` when partial, else the whole object. */
export function servedRange (contentRange: string | undefined, contentLength: number): { start: number, end: number, size: number } {
  const match = contentRange === undefined ? null : /^bytes (\d+)-(\d+)\/(\d+)$/.exec(contentRange)
  if (match?.[1] === undefined || match[2] === undefined || match[3] === undefined) {
    return { start: 0, end: contentLength - 1, size: contentLength }
  }
  return { start: Number(match[1]), end: Number(match[2]), size: Number(match[3]) }
}

export async function * sliceStream (body: Readable, skip: number, length: number): AsyncGenerator<Buffer> {
  let toSkip = skip
  let left = length
  // Leaving the loop early destroys `body`, which stops the download of unwanted bytes.
  for await (const chunk of body as AsyncIterable<Buffer>) {
    const from = Math.min(toSkip, chunk.length)
    toSkip -= from
    const piece = chunk.subarray(from, from + left)
    left -= piece.length
    if (piece.length > 0) yield piece
    if (left === 0) return
  }
}

export function errorName (err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined
}

export function httpStatus (err: unknown): number | undefined {
  return err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined
}

export function isNotFound (err: unknown): boolean {
  const name = errorName(err)
  if (name === 'NoSuchBucket') return false
  return (name !== undefined && NOT_FOUND_NAMES.has(name)) || httpStatus(err) === 404
}
