import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { addAbortSignal, Readable } from 'node:stream'
import {
  assertObjectKey,
  BlobNotFoundError,
  type BlobInfo,
  type BlobStore,
  type GetOptions,
  type GetResult,
  type PutOptions,
  type PutResult
} from './blob-store.js'
import { abortError, clientConfig, errorName, httpStatus, isAborted, isNotFound, servedRange, sliceStream, toStorageError, type S3ConnectionOptions } from './s3-support.js'

export interface S3BlobStoreOptions extends S3ConnectionOptions {
  bucket: string
  /** Bytes per multipart part; S3 refuses parts under 5 MiB (except the last). */
  partSizeBytes?: number
  /** Parts uploaded at once; memory use is about queueSize × partSizeBytes. */
  queueSize?: number
  /** A client the caller owns: the store uses it and leaves it open on close. */
  client?: S3Client
}

const MIB = 1024 * 1024
export const MIN_PART_SIZE_BYTES = 5 * MIB
const DEFAULT_PART_SIZE_BYTES = 8 * MIB
// versitygw answers an unknown access key id with 404 XAdminUserNotFound, not AWS's 403.
const REFUSED_NAMES = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'Forbidden', 'InvalidToken', 'XAdminUserNotFound'])

export function createS3BlobStore (opts: S3BlobStoreOptions): BlobStore {
  const bucket = opts.bucket
  const partSize = opts.partSizeBytes ?? DEFAULT_PART_SIZE_BYTES
  const queueSize = opts.queueSize ?? 4
  if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE_BYTES) {
    throw new Error(`S3 part size must be an integer of at least ${MIN_PART_SIZE_BYTES} bytes, got ${partSize}`)
  }
  if (!Number.isSafeInteger(queueSize) || queueSize < 1) {
    throw new Error(`S3 upload queue size must be a positive integer, got ${queueSize}`)
  }
  const ownsClient = opts.client === undefined
  const client = opts.client ?? new S3Client(clientConfig(opts))
  const where = opts.endpoint ?? `AWS S3 (${opts.region ?? 'us-east-1'})`

  async function put (key: string, body: Readable, options: PutOptions = {}): Promise<PutResult> {
    assertObjectKey(key)
    const { signal } = options
    if (isAborted(signal)) throw abortError(signal)
    let bytes = 0
    let sourceError: unknown
    // A generator rather than pipe/pipeline: only a failure of the caller's body lands in
    // sourceError, never lib-storage closing its side early, so the right error is reported.
    async function * counted (): AsyncGenerator<Buffer> {
      try {
        for await (const chunk of body as AsyncIterable<Buffer | string>) {
          const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
          bytes += buf.length
          yield buf
        }
      } catch (err) {
        sourceError ??= err
        throw err
      }
    }
    const upload = new Upload({
      client,
      params: { Bucket: bucket, Key: key, Body: Readable.from(counted()), ContentType: options.contentType },
      partSize,
      queueSize,
      leavePartsOnError: false
    })
    // Upload.abort() makes done() reject at once while parts, or a single PutObject, are
    // still in flight and AbortMultipartUpload is sent later, so put would return before
    // the bucket is clean. Failing the body instead makes done() settle only after
    // lib-storage has drained its in-flight requests and aborted the multipart upload.
    const onAbort = (): void => { body.destroy(abortError(signal)) }
    signal?.addEventListener('abort', onAbort, { once: true })
    let etag: string | undefined
    try {
      etag = (await upload.done()).ETag
    } catch (err) {
      if (!body.destroyed) body.destroy()
      await abortMultipartAgain(upload.uploadId, key)
      if (isAborted(signal)) throw abortError(signal)
      throw toStorageError(sourceError ?? err)
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
    if (isAborted(signal)) {
      // S3 took the complete body just as the caller gave up: undo it, as promised.
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })).catch(() => {})
      throw abortError(signal)
    }
    return { bytes, etag }
  }

  /**
   * lib-storage already sent AbortMultipartUpload when done() rejected (leavePartsOnError
   * is false), but if that request itself failed the parts would stay billed: try once
   * more. A second abort of the same upload fails with NoSuchUpload, which is fine.
   */
  async function abortMultipartAgain (uploadId: string | undefined, key: string): Promise<void> {
    if (uploadId === undefined) return
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
      .catch(() => {})
  }

  async function get (key: string, options: GetOptions = {}): Promise<GetResult> {
    assertObjectKey(key)
    const range = options.range
    if (range !== undefined && (!Number.isSafeInteger(range.start) || !Number.isSafeInteger(range.end) ||
      range.start < 0 || range.end < range.start)) {
      throw new RangeError(`range ${range.start}-${range.end} is not valid`)
    }
    let out
    try {
      out = await client.send(new GetObjectCommand({
        Bucket: bucket,
        Key: key,
        Range: range === undefined ? undefined : `bytes=${range.start}-${range.end}`
      }), { abortSignal: options.signal })
    } catch (err) {
      if (isNotFound(err)) throw new BlobNotFoundError(key)
      if (errorName(err) === 'InvalidRange' || httpStatus(err) === 416) {
        throw new RangeError(`range ${range?.start}-${range?.end} not satisfiable for ${key}`, { cause: err })
      }
      throw toStorageError(err)
    }
    if (!(out.Body instanceof Readable)) {
      throw new Error(`S3 GetObject for ${key} returned no Node.js stream`)
    }
    const served = servedRange(out.ContentRange, out.ContentLength ?? 0)
    let body: Readable = out.Body
    let contentLength = out.ContentLength ?? 0
    if (range !== undefined) {
      const end = Math.min(range.end, served.size - 1)
      if (served.start > range.start || served.end < end) {
        body.destroy()
        throw new Error(`S3 answered bytes ${served.start}-${served.end} of ${key} for ${range.start}-${end}`)
      }
      contentLength = end - range.start + 1
      // Some S3 look-alikes serve more than asked (s3rver reads `bytes=0-0` as the whole
      // object, a server may ignore Range altogether): cut the asked bytes out ourselves.
      if (served.start !== range.start || served.end !== end) {
        body = Readable.from(sliceStream(body, range.start - served.start, contentLength), { objectMode: false })
      }
    }
    if (options.signal !== undefined) addAbortSignal(options.signal, body)
    return { body, size: served.size, contentLength, etag: out.ETag }
  }

  async function head (key: string): Promise<BlobInfo | null> {
    assertObjectKey(key)
    try {
      const out = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
      return { key, size: out.ContentLength ?? 0, lastModified: out.LastModified ?? new Date(0), etag: out.ETag }
    } catch (err) {
      if (isNotFound(err)) return null
      throw err
    }
  }

  async function remove (key: string): Promise<void> {
    assertObjectKey(key)
    try {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))
    } catch (err) {
      if (!isNotFound(err)) throw err
    }
  }

  async function * list (prefix = ''): AsyncIterable<BlobInfo> {
    let token: string | undefined
    do {
      const page = await client.send(new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: prefix === '' ? undefined : prefix,
        ContinuationToken: token
      }))
      for (const item of page.Contents ?? []) {
        if (item.Key === undefined) continue
        yield { key: item.Key, size: item.Size ?? 0, lastModified: item.LastModified ?? new Date(0), etag: item.ETag }
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (token !== undefined)
  }

  // A process killed mid-upload leaves its multipart upload open (and its parts billed).
  async function abortIncomplete (olderThan: Date, prefix: string): Promise<number | null> {
    if (prefix === '') throw new Error('the abort sweep needs a key prefix: a whole bucket may hold other applications\' uploads')
    let aborted = 0
    let keyMarker: string | undefined
    let uploadIdMarker: string | undefined
    do {
      let page
      try {
        page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }))
      } catch (err) {
        if (errorName(err) === 'NotImplemented' || httpStatus(err) === 501) return null
        throw err
      }
      for (const upload of page.Uploads ?? []) {
        // Checked again here: a server that ignores Prefix must not lead us into others' uploads.
        if (upload.Key === undefined || upload.UploadId === undefined || !upload.Key.startsWith(prefix)) continue
        if (upload.Initiated !== undefined && upload.Initiated >= olderThan) continue
        await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }))
        aborted++
      }
      const more = page.IsTruncated === true
      keyMarker = more ? page.NextKeyMarker : undefined
      uploadIdMarker = more ? page.NextUploadIdMarker : undefined
    } while (keyMarker !== undefined)
    return aborted
  }

  async function check (): Promise<void> {
    try {
      await client.send(new HeadBucketCommand({ Bucket: bucket }))
    } catch (err) {
      throw new Error(describeCheckFailure(await explainHeadFailure(err)), { cause: err })
    }
  }

  /**
   * A HEAD answer has no body, so the SDK knows only its status: a 404 may be a missing
   * bucket or, on versitygw, an unknown access key id. A one-key listing needs the same
   * permission (s3:ListBucket) and its error names the cause; its error is then used.
   */
  async function explainHeadFailure (err: unknown): Promise<unknown> {
    if (httpStatus(err) !== 404) return err
    try {
      await client.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1 }))
      return err
    } catch (named) {
      return named
    }
  }

  // Only names, codes and the SDK's own message: the secret key never reaches a message.
  function describeCheckFailure (err: unknown): string {
    const name = errorName(err) ?? 'Error'
    const status = httpStatus(err)
    const detail = err instanceof Error && err.message !== '' && err.message !== 'UnknownError'
      ? `${name}: ${err.message}`
      : `${name}${status === undefined ? '' : ` (HTTP ${status})`}`
    if (REFUSED_NAMES.has(name) || status === 403) {
      const id = opts.accessKeyId === undefined ? 'the default credentials' : `access key id "${opts.accessKeyId}"`
      return `S3 bucket "${bucket}" at ${where} refused the credentials (${id}): ${detail}`
    }
    if (name === 'NotFound' || name === 'NoSuchBucket' || status === 404) {
      return `S3 bucket "${bucket}" at ${where} does not exist: ${detail}`
    }
    return `S3 bucket "${bucket}" at ${where} is not reachable: ${detail}`
  }

  return {
    driver: 's3',
    put,
    get,
    head,
    delete: remove,
    list,
    abortIncomplete,
    check,
    close: async () => {
      if (ownsClient) client.destroy()
    }
  }
}
