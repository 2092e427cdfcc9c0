import type { Readable } from 'node:stream'

/**
 * The one interface every blob storage driver implements. Drivers are the only modules
 * that import a storage SDK; everything above them sees these few methods.
 *
 * Atomicity contract (issue #2, item 8): `put` makes the object visible under `key`
 * only when the whole body was read and stored. If the body stream errors, or `signal`
 * aborts, `put` rejects and leaves nothing behind (no temp file, no unfinished S3
 * multipart upload, no partial object).
 */
export interface BlobStore {
  /** Driver name, for logs and metrics: `fs` or `s3`. */
  readonly driver: string
  /** Stores the whole of `body` under `key`. Start this before writing into `body`. */
  put (key: string, body: Readable, options?: PutOptions): Promise<PutResult>
  /** Opens the object for reading, optionally only `range` (inclusive byte offsets). */
  get (key: string, options?: GetOptions): Promise<GetResult>
  /** Size and etag of the object, or `null` when it does not exist. */
  head (key: string): Promise<BlobInfo | null>
  /** Removes the object. Removing a missing object is not an error. */
  delete (key: string): Promise<void>
  /**
   * Lists objects under `prefix` in key order (bytewise, as S3's ListObjectsV2), for
   * reconciliation's merge join.
   */
  list (prefix?: string): AsyncIterable<BlobInfo>
  /**
   * Removes what crashed writers left behind (fs temp files, unfinished S3 multipart
   * uploads) started before `olderThan`, and only under `prefix`: a shared bucket's other
   * uploads are not ours. Returns how many, or null when the store cannot list them
   * (s3rver has no ListMultipartUploads).
   */
  abortIncomplete (olderThan: Date, prefix: string): Promise<number | null>
  /** Throws when the store is not reachable or not usable (readiness). */
  check (): Promise<void>
  /** Releases connections and handles the driver created itself. */
  close (): Promise<void>
}

export interface PutOptions {
  signal?: AbortSignal
  contentType?: string
}

export interface PutResult {
  /** Bytes stored. */
  bytes: number
  etag?: string
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number
  /** Last byte, inclusive. */
  end: number
}

export interface GetOptions {
  range?: ByteRange
  signal?: AbortSignal
}

export interface GetResult {
  body: Readable
  /** Size of the whole object. */
  size: number
  /** Bytes in `body` (the range's length when a range was asked for). */
  contentLength: number
  etag?: string
}

export interface BlobInfo {
  key: string
  size: number
  lastModified: Date
  etag?: string
}

/** Thrown by drivers when `get` names an object that does not exist. */
export class BlobNotFoundError extends Error {
  readonly key: string
  constructor (key: string) {
    super(`blob not found: ${key}`)
    this.name = 'BlobNotFoundError'
    this.key = key
  }
}

/** Thrown by drivers when the device or bucket has no room left (ENOSPC, EntityTooLarge). */
export class StorageFullError extends Error {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StorageFullError'
  }
}

/**
 * Thrown by drivers when the store did not answer in time (connect or request timeout):
 * a slow store is told apart from a refusing one, so the answer (504) and the operator
 * know which.
 */
export class StorageTimeoutError extends Error {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StorageTimeoutError'
  }
}

/**
 * Object keys are built by the service from the project and the file id, never from a
 * client's filename; drivers still refuse anything that could escape their root.
 */
export const OBJECT_KEY_PATTERN = /^(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9._\-/]{1,1024}$/

export function assertObjectKey (key: string): void {
  if (!OBJECT_KEY_PATTERN.test(key) || key.startsWith('/') || key.includes('//')) {
    throw new Error(`invalid object key: ${JSON.stringify(key)}`)
  }
}

/** Bytewise order of keys, as S3 lists them (keys are ASCII, see OBJECT_KEY_PATTERN, so UTF-16 order is byte order). */
export function compareKeys (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
