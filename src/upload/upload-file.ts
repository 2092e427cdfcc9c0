import { once } from 'node:events'
import { PassThrough, addAbortSignal, type Readable } from 'node:stream'
import type { BatchError } from '../../schemas/batch-error.js'
import { UPLOAD_PURPOSES, type Purpose } from '../../schemas/files.js'
import { ApiError, ERRORS } from '../errors.js'
import { summarizeBatchErrors, validateBatchFilename, type BatchValidationResult, type BatchValidatorOptions } from '../jsonl/batch-validator.js'
import type { FileService } from '../files/file-service.js'
import type { FileRecord, NewFileRecord } from '../metadata/file-store.js'
import { StorageFullError, StorageTimeoutError, type BlobStore } from '../storage/blob-store.js'
import { newUploadId, objectKeyFor } from '../ids.js'
import { sanitizeFilename } from './filename.js'
import { checkPart, parseExpiresAfter, parsePurpose, type ExpiresAfterFields, type UploadPart } from './form-fields.js'
import type { CheckPool, UploadCheck } from './check-pool.js'
import { inlineCheck } from './inline-check.js'
import { untilAborted } from './until-aborted.js'

export interface UploadLimits {
  maxFileBytes: number
  batchMaxFileBytes: number
}

export interface UploadDeps {
  blobStore: BlobStore
  /** Commits the stored object as a file (the row, with the id minted at commit). */
  files: FileService
  limits: UploadLimits
  validator: BatchValidatorOptions
  /** Lifetime of batch files without an explicit expires_after; 0: never. */
  batchExpiresAfterSeconds: number
  /**
   * UPLOAD_MAX_DURATION_MS, enforced by the upload route through the abort signal:
   * reconciliation relies on no upload running longer (its grace exceeds this).
   */
  maxDurationMs?: number
  /** STORAGE_PREFIX (default `files/`). */
  storagePrefix?: string
  /** Milliseconds since the epoch; injectable so expiry can be tested with a controlled clock. */
  now: () => number
  /**
   * The last word before the object is completed (quotas): throwing refuses the upload
   * and abandons the put, so nothing is stored.
   */
  beforeCommit?: (file: { project: string, purpose: Purpose, bytes: number }) => Promise<void>
  /**
   * Worker threads that validate and hash off the event loop (UPLOAD_WORKER_THREADS);
   * absent or null: on the event loop, as the CLI does.
   */
  checkPool?: CheckPool | null
  /** Uploads declared smaller than this are checked inline (default OFFLOAD_MIN_BYTES). */
  offloadMinBytes?: number
}

export interface UploadContext {
  project: string
  /**
   * Aborts the upload (the client went away, the server is shutting down): stops reading
   * the request and abandons the put. An ApiError as the abort reason is the answer.
   */
  signal?: AbortSignal
  /**
   * The request's Content-Length, when it has one: a small upload is checked on the event
   * loop, where it costs less than a worker's round trips. Unknown: as a large one.
   */
  declaredBytes?: number
}

function limitFor (purpose: Purpose | undefined, limits: UploadLimits): number {
  // While the purpose is unknown (the openai SDK and curl send `file` first) only the
  // larger limit can be enforced; the batch limit is checked again once it is known.
  if (purpose === 'batch') return limits.batchMaxFileBytes
  return limits.maxFileBytes
}

/** Errors from the storage side become 503/504/507; ours pass through. */
export function storageError (error: unknown): ApiError {
  if (error instanceof ApiError) return error
  if (error instanceof StorageFullError) return ERRORS.storageFull(error)
  if (error instanceof StorageTimeoutError) return ERRORS.storageTimeout(error)
  return ERRORS.storageUnavailable(error)
}

/** Errors from reading the request (busboy, a closed socket) are the client's. */
function requestError (error: unknown): ApiError {
  if (error instanceof ApiError) return error
  const fastifyCode = (error as { code?: string }).code
  if (fastifyCode === 'FST_FILES_LIMIT') return ERRORS.invalidMultipart('Send exactly one file, in the field "file".', error)
  if (fastifyCode === 'FST_FIELDS_LIMIT' || fastifyCode === 'FST_PARTS_LIMIT') {
    return ERRORS.invalidMultipart('Too many form fields; send "file", "purpose" and optionally "expires_after".', error)
  }
  if (fastifyCode === 'FST_INVALID_MULTIPART_CONTENT_TYPE') return ERRORS.unsupportedMediaType(undefined)
  const message = error instanceof Error ? error.message : String(error)
  return ERRORS.invalidMultipart(`Malformed multipart/form-data body: ${message}.`, error)
}

/**
 * One write into the store's input, honouring backpressure. `storeFailed` rejects as
 * soon as the store gives up, so a failed store cannot leave us waiting for 'drain'.
 */
async function writeToStore (body: PassThrough, chunk: Buffer, storeFailed: Promise<never>): Promise<void> {
  if (body.write(chunk)) return
  try {
    await Promise.race([once(body, 'drain'), storeFailed])
  } catch {
    // A failing driver destroys `body` with its raw error (ENOSPC) before its own put
    // rejects with the mapped one (StorageFullError): the put's answer says what failed,
    // so a full disk is a 507, not a 503 (CI caught the race). It always rejects.
    await storeFailed
  }
}

interface PendingPut {
  body: PassThrough
  done: Promise<{ bytes: number }>
  failed: Promise<never>
  abort: AbortController
}

function startPut (store: BlobStore, key: string, signal: AbortSignal | undefined): PendingPut {
  const abort = new AbortController()
  signal?.addEventListener('abort', () => abort.abort(signal.reason), { once: true })
  const body = new PassThrough({ highWaterMark: 1024 * 1024 })
  // The store's read starts before any write into `body`, or backpressure deadlocks.
  const done = store.put(key, body, { signal: abort.signal })
  const failed = done.then(() => { throw new Error('the store finished before the upload ended') })
  failed.catch(() => {})
  done.catch(() => {})
  return { body, done, failed, abort }
}

/** Abandons a put: nothing of it may remain (the driver's contract). */
async function cancelPut (put: PendingPut, reason: unknown): Promise<void> {
  put.abort.abort(reason)
  put.body.destroy()
  await put.done.catch(() => {})
}

/**
 * The upload, in one streaming pass: multipart file part → size limits → line splitter
 * and validator → storage, then commit the metadata row. Form fields may come in any
 * order. A file becomes visible only when the whole request was valid and stored; any
 * failure abandons the put (no object, temp file or multipart upload remains) and no
 * row is written. See issue #2, items 7–10.
 */
export async function uploadFile (parts: AsyncIterable<UploadPart>, context: UploadContext, deps: UploadDeps): Promise<FileRecord> {
  let purpose: Purpose | undefined
  const expiresAfter: ExpiresAfterFields = {}
  let put: PendingPut | undefined
  let file: { key: string, filename: string, bytes: number, sha256: string, validation?: BatchValidationResult, filenameError: BatchError | null } | undefined
  try {
    try {
      for await (const part of untilAborted(parts, context.signal)) {
        checkPart(part)
        if (part.type === 'field') {
          if (part.fieldname === 'purpose') purpose = parsePurpose(part.value)
          else if (part.fieldname === 'expires_after[anchor]') expiresAfter.anchor = part.value
          else if (part.fieldname === 'expires_after[seconds]') expiresAfter.seconds = part.value
          else if (part.fieldname === 'file') throw ERRORS.invalidParameter('file', 'The "file" field must be a file upload (multipart part with a filename), not a text field.')
          // Other fields are ignored, as OpenAI ignores fields it does not know.
          continue
        }
        if (part.fieldname !== 'file') throw ERRORS.invalidParameter(part.fieldname, `Unexpected file field "${part.fieldname}"; send the file in the field "file".`)
        if (file !== undefined) throw ERRORS.invalidMultipart('Send exactly one file, in the field "file".')
        const filename = sanitizeFilename(part.filename)
        const filenameError = validateBatchFilename(filename)
        if (purpose === 'batch' && filenameError !== null) throw ERRORS.invalidBatchFile(filenameError.message, [filenameError], 1)
        // The file id is minted at commit, so ids are in commit order (issue 9, item 6);
        // until then the object is named by an upload id of its own.
        const key = objectKeyFor(context.project, newUploadId(), deps.storagePrefix)
        put = startPut(deps.blobStore, key, context.signal)
        // A stalled file part must not outlive the abort: destroying it ends its read at once.
        if (context.signal !== undefined) addAbortSignal(context.signal, part.file)
        file = { key, filename, filenameError, ...await streamFile(part.file, put, purpose, filenameError === null, context, deps) }
      }
    } catch (error) {
      throw requestError(error)
    }
    if (file === undefined || put === undefined) throw ERRORS.missingParameter('file', 'Missing the "file" part: send the file as multipart field "file".')
    if (purpose === undefined) throw ERRORS.missingParameter('purpose', `Missing "purpose": one of ${UPLOAD_PURPOSES.join(', ')}.`)
    const lifetime = parseExpiresAfter(expiresAfter) ?? (purpose === 'batch' && deps.batchExpiresAfterSeconds > 0 ? deps.batchExpiresAfterSeconds : null)
    let warnings: BatchError[] = []
    if (purpose === 'batch') {
      if (file.bytes > deps.limits.batchMaxFileBytes) throw ERRORS.fileTooLarge(deps.limits.batchMaxFileBytes, purpose)
      if (file.filenameError !== null) throw ERRORS.invalidBatchFile(file.filenameError.message, [file.filenameError], 1)
      const result = file.validation
      if (result === undefined) throw ERRORS.internal(new Error('batch file was not validated'))
      if (!result.valid) throw ERRORS.invalidBatchFile(summarizeBatchErrors(result), result.errors, result.errorCount)
      warnings = result.warnings
    }
    if (deps.beforeCommit !== undefined) await deps.beforeCommit({ project: context.project, purpose, bytes: file.bytes })
    put.body.end()
    let stored: { bytes: number }
    try {
      stored = await put.done
    } catch (error) {
      throw storageError(error)
    }
    if (stored.bytes !== file.bytes) {
      // The put is over, cancelling it removes nothing: the object must go by hand.
      await deps.blobStore.delete(file.key).catch(() => {})
      throw ERRORS.internal(new Error(`store reported ${stored.bytes} bytes for ${file.bytes} received`))
    }
    const createdAt = Math.floor(deps.now() / 1000)
    const record: NewFileRecord = {
      project: context.project,
      filename: file.filename,
      purpose,
      bytes: file.bytes,
      createdAt,
      expiresAt: lifetime === null ? null : createdAt + lifetime,
      requestCount: purpose === 'batch' ? (file.validation?.requests ?? null) : null,
      sha256: file.sha256,
      storageKey: file.key,
      warnings
    }
    // The object is complete: from here on the file service owns it (a failed commit
    // removes it), so the put must not be cancelled any more.
    put = undefined
    return await deps.files.commit(record)
  } catch (error) {
    if (put !== undefined) await cancelPut(put, error)
    // Whatever broke after an abort (a destroyed stream, a cancelled put) is its consequence.
    if (context.signal?.aborted === true) throw abortedError(context.signal.reason)
    throw error
  }
}

function abortedError (reason: unknown): ApiError {
  return reason instanceof ApiError ? reason : ERRORS.internal(reason)
}

/**
 * Below this a worker's round trips (and the copy into its slices) cost more than they
 * save: measured with bench/offload.ts (docs/benchmarks.md, "Both cores").
 */
export const OFFLOAD_MIN_BYTES = 64 * 1024

function openCheck (validator: BatchValidatorOptions | null, context: UploadContext, deps: UploadDeps): UploadCheck {
  const pool = deps.checkPool
  const small = context.declaredBytes !== undefined && context.declaredBytes < (deps.offloadMinBytes ?? OFFLOAD_MIN_BYTES)
  return (pool === undefined || pool === null || small ? null : pool.open(validator)) ?? inlineCheck(validator)
}

/**
 * Reads the file part to its end: counts and hashes every byte, enforces the size
 * limit, feeds the validator (unless the file cannot be a batch file) and writes
 * into the store until the file is known to be refused. A batch file with a bad line
 * stops being stored once the error is known (at once inline, a few slices later from
 * a worker) but is read to the end, so one answer names every line; the verdict that
 * decides commit or abort is the validator's after the last byte either way.
 */
const STORE_WRITE_BYTES = 1024 * 1024

async function streamFile (source: Readable & { truncated?: boolean }, put: PendingPut, purpose: Purpose | undefined,
  validatable: boolean, context: UploadContext, deps: UploadDeps): Promise<{ bytes: number, sha256: string, validation?: BatchValidationResult }> {
  const limit = limitFor(purpose, deps.limits)
  // A purpose known before the file decides at once: only batch files are validated, so a
  // user_data file's bytes go straight to storage. Sent after the file (the openai SDK and
  // curl do), the purpose is unknown while the bytes stream, and the validator must run,
  // or a batch file could not be refused with its lines named. Its memory is bounded by
  // the batch limits either way (line bytes, custom_id set); past BATCH_MAX_FILE_BYTES
  // the file can no longer be a valid batch file (413 if it turns out to be one), so the
  // validator is dropped there (issue #9 item 7).
  let validating = (purpose === undefined || purpose === 'batch') && validatable
  const check = openCheck(validating ? deps.validator : null, context, deps)
  let bytes = 0
  let storing = true
  // Multipart hands over ~64 KiB pieces; writing them to the store in 1 MiB batches
  // cut the main thread's CPU per MiB by 11-40% in the bench (issue #5).
  let pending: Buffer[] = []
  let pendingBytes = 0
  const flush = async (): Promise<void> => {
    const batch = pending.length === 1 ? pending[0] as Buffer : Buffer.concat(pending, pendingBytes)
    pending = []
    pendingBytes = 0
    await writeToStore(put.body, batch, put.failed).catch((error: unknown) => { throw storageError(error) })
  }
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      bytes += chunk.length
      if (bytes > limit) throw ERRORS.fileTooLarge(limit, purpose)
      if (validating && purpose === undefined && bytes > deps.limits.batchMaxFileBytes) {
        validating = false
        check.dropValidator()
      }
      // Waits only when the worker lags: the bytes it holds for this upload are bounded.
      const checked = check.write(chunk)
      if (checked !== undefined) await checked
      if (storing && validating && purpose === 'batch' && check.errorCount > 0) {
        storing = false
        pending = []
        pendingBytes = 0
        put.abort.abort(new Error('batch file is invalid'))
      }
      if (!storing) continue
      pending.push(chunk)
      pendingBytes += chunk.length
      if (pendingBytes >= STORE_WRITE_BYTES) await flush()
    }
    if (storing && pendingBytes > 0) await flush()
    // @fastify/multipart truncates silently at limits.fileSize; never store a cut file.
    if (source.truncated === true) throw ERRORS.fileTooLarge(limit, purpose)
    const { sha256, validation } = await check.end()
    return validation === undefined ? { bytes, sha256 } : { bytes, sha256, validation }
  } finally {
    // An abort, a limit, a failed store: the worker forgets this upload's check at once.
    check.close()
  }
}
