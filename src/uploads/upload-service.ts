import { Readable } from 'node:stream'
import type { Purpose } from '../../schemas/files.js'
import { ApiError, ERRORS } from '../errors.js'
import type { FileRecord } from '../metadata/file-store.js'
import type { FileService, FileServiceLog } from '../files/file-service.js'
import { newPartId, newUploadObjectId, uploadPartKey } from '../ids.js'
import type { BlobStore } from '../storage/blob-store.js'
import { sanitizeFilename } from '../upload/filename.js'
import { storageError } from '../upload/upload-file.js'
import { completeUpload, type CompleteRequest } from './complete-upload.js'
import type { PartRecord, UploadRecord, UploadState, UploadStore } from './upload-store.js'

/** OpenAI's rule: an upload expires one hour after it was created. */
export const UPLOAD_LIFETIME_SECONDS = 3600
/** OpenAI's part limit, 64 MB; the SDKs' helpers send parts of 64 MiB, so that is the bound. */
export const MAX_PART_BYTES = 64 * 1024 * 1024

export interface UploadServiceDeps {
  store: UploadStore
  blobStore: BlobStore
  files: FileService
  limits: {
    /** UPLOAD_MAX_BYTES. */
    maxBytes: number
    /** BATCH_MAX_FILE_BYTES: a batch file is bounded the same whichever way it comes. */
    batchMaxBytes: number
    /** UPLOAD_MAX_PARTS. */
    maxParts: number
    /** PROJECT_MAX_PENDING_UPLOADS; 0: unlimited. */
    maxPendingPerProject: number
  }
  storagePrefix?: string
  /** Milliseconds since the epoch; injectable so expiry can be tested with a controlled clock. */
  now: () => number
  /**
   * UPLOAD_MAX_DURATION_MS: the longest a completion may run, so an upload still
   * `completing` that long after its expiry belongs to a replica that died mid-completion.
   */
  maxDurationMs: number
  log: FileServiceLog
}

export interface NewUpload {
  project: string
  filename: string
  purpose: Purpose
  bytes: number
  mimeType: string
  fileExpiresAfterSeconds: number | null
}

/**
 * OpenAI's Uploads API over the blob and metadata stores, the one owner of their
 * consistency for uploads (as FileService is for files):
 * - a part's object is complete before its row exists, and a row is written only while
 *   the upload is pending (one statement), so a part finishing after a cancel is removed;
 * - on cancel, completion and expiry the state changes first, then the part rows go,
 *   then their objects: an object left behind (a failed delete, a crash) belongs to an
 *   upload that is no longer pending, which reconciliation removes
 *   (stale-upload-parts.ts);
 * - every lookup is scoped to a project: another project's upload does not exist.
 *
 * Parts are objects of their own, whatever their size, and completion assembles them in
 * one streaming pass through the upload pipeline of `POST /files` (issue 13): see
 * docs/uploads.md for why not S3 multipart parts.
 */
export interface UploadService {
  create: (upload: NewUpload) => Promise<UploadRecord>
  /** The project's upload, or 404 (missing or another project's). */
  get: (project: string, id: string) => Promise<UploadRecord>
  addPart: (project: string, uploadId: string, data: Readable & { truncated?: boolean }, signal?: AbortSignal) => Promise<PartRecord>
  complete: (project: string, uploadId: string, request: CompleteRequest) => Promise<{ upload: UploadRecord, file: FileRecord | null }>
  cancel: (project: string, uploadId: string) => Promise<UploadRecord>
  /** Expires up to `limit` due uploads and removes their parts; safe on every replica at once. */
  expireDue: (limit: number) => Promise<{ expired: number, partErrors: number }>
  /** OpenAI's status: `completing` shows as pending, a pending upload past its expiry as expired. */
  statusOf: (upload: UploadRecord) => 'pending' | 'completed' | 'cancelled' | 'expired'
}

/** What the parts of one upload may hold in all: twice its bytes (every part retried once) and one part more. */
export function partBytesAllowance (bytes: number): number {
  return 2 * bytes + MAX_PART_BYTES
}

const UPLOAD_ID = /^upload_[0-9A-HJKMNP-TV-Z]{26}$/

export function createUploadService (deps: UploadServiceDeps): UploadService {
  const { store, blobStore, limits, log } = deps
  const nowSeconds = (): number => Math.floor(deps.now() / 1000)

  function statusOf (upload: UploadRecord): 'pending' | 'completed' | 'cancelled' | 'expired' {
    if (upload.state === 'pending' || upload.state === 'completing') return upload.expiresAt <= nowSeconds() && upload.state === 'pending' ? 'expired' : 'pending'
    return upload.state
  }

  async function get (project: string, id: string): Promise<UploadRecord> {
    const upload = UPLOAD_ID.test(id) ? await store.getUpload(project, id) : null
    if (upload === null) throw ERRORS.uploadNotFound(id)
    return upload
  }

  /** The pending upload, or the refusal naming its status. */
  async function pending (project: string, id: string): Promise<UploadRecord> {
    const upload = await get(project, id)
    const status = statusOf(upload)
    if (upload.state !== 'pending' || status !== 'pending') throw ERRORS.uploadNotPending(id, upload.state === 'completing' ? 'completing' : status)
    return upload
  }

  /** Rows first, then objects: a failed object delete leaves debris reconciliation finds. */
  async function removeParts (uploadId: string, ids?: readonly string[]): Promise<number> {
    const parts = await store.deleteParts(uploadId, ids)
    let failed = 0
    await Promise.all(parts.map(async (part) => {
      try {
        await blobStore.delete(part.storageKey)
      } catch (error) {
        failed++
        log.warn({ uploadId, partId: part.id, storageKey: part.storageKey, err: error }, 'upload part row deleted; its object could not be removed yet')
      }
    }))
    return failed
  }

  async function refusedState (project: string, id: string, fallback: UploadState): Promise<ApiError> {
    const now = await store.getUpload(project, id)
    return ERRORS.uploadNotPending(id, now === null ? fallback : now.state === 'completing' ? 'completing' : statusOf(now))
  }

  return {
    statusOf,
    get,

    async create (upload) {
      const limit = upload.purpose === 'batch' ? Math.min(limits.batchMaxBytes, limits.maxBytes) : limits.maxBytes
      if (upload.bytes > limit) throw ERRORS.uploadBytesTooLarge(upload.bytes, limit, upload.purpose)
      const createdAt = nowSeconds()
      // Counted, then inserted: uploads created at the same instant may overshoot by the
      // ones in flight, as the file quotas do (src/upload/quota.ts).
      if (limits.maxPendingPerProject > 0 && await store.countLive(upload.project, createdAt) >= limits.maxPendingPerProject) {
        throw ERRORS.tooManyLiveUploads(limits.maxPendingPerProject)
      }
      const record: UploadRecord = {
        ...upload,
        id: newUploadObjectId(deps.now()),
        filename: sanitizeFilename(upload.filename),
        state: 'pending',
        createdAt,
        expiresAt: createdAt + UPLOAD_LIFETIME_SECONDS,
        fileId: null
      }
      await store.insertUpload(record).catch((error: unknown) => { throw ERRORS.databaseUnavailable(error) })
      return record
    },

    async addPart (project, uploadId, data, signal) {
      const upload = await pending(project, uploadId)
      const usage = await store.partUsage(upload.id)
      if (usage.count >= limits.maxParts) throw ERRORS.tooManyParts(limits.maxParts)
      const id = newPartId(deps.now())
      const key = uploadPartKey(upload.id, id, deps.storagePrefix)
      let bytes = 0
      // Counted on the way: one byte past the bound fails the body, so the put stores nothing.
      async function * bounded (): AsyncGenerator<Buffer> {
        for await (const chunk of data as AsyncIterable<Buffer>) {
          bytes += chunk.length
          if (bytes > MAX_PART_BYTES) throw ERRORS.partTooLarge(MAX_PART_BYTES)
          yield chunk
        }
        // @fastify/multipart truncates silently at its fileSize: never keep a cut part.
        if (data.truncated === true) throw ERRORS.partTooLarge(MAX_PART_BYTES)
      }
      try {
        await blobStore.put(key, Readable.from(bounded(), { objectMode: false }), signal === undefined ? {} : { signal })
      } catch (error) {
        throw storageError(error)
      }
      // Retried parts are stored again, but a client sending far more than the upload's
      // bytes is not retrying: what one upload may hold is bounded (parts in flight at once
      // may each pass the check, so by at most those).
      const allowance = partBytesAllowance(upload.bytes)
      if (usage.bytes + bytes > allowance) {
        await blobStore.delete(key).catch(() => {})
        throw ERRORS.partsExceedUpload(upload.bytes, allowance)
      }
      const part: PartRecord = { id, uploadId: upload.id, bytes, createdAt: nowSeconds(), storageKey: key }
      let recorded: boolean
      try {
        recorded = await store.insertPart(part, nowSeconds())
      } catch (error) {
        await blobStore.delete(key).catch(() => {})
        throw ERRORS.databaseUnavailable(error)
      }
      if (!recorded) {
        // Cancelled, completing or expired while the part was arriving: it is not kept.
        await blobStore.delete(key).catch(() => {})
        throw await refusedState(project, upload.id, 'cancelled')
      }
      return part
    },

    async complete (project, uploadId, request) {
      const upload = await get(project, uploadId)
      // A retried completion whose answer was lost: the same answer again.
      if (upload.state === 'completed' && upload.fileId !== null) {
        const found = await deps.files.find(project, upload.fileId)
        return { upload, file: found?.record ?? null }
      }
      const seen = new Set<string>()
      for (const id of request.partIds) {
        if (seen.has(id)) throw ERRORS.duplicatePart(id)
        seen.add(id)
      }
      await pending(project, uploadId)
      const completing = await store.transition(upload.id, 'completing', { liveAt: nowSeconds() })
      if (completing === null) throw await refusedState(project, upload.id, 'cancelled')
      let outcome: { state: UploadState, file?: FileRecord } = { state: 'pending' }
      try {
        const file = await completeUpload(completing, request, {
          parts: await store.parts(upload.id),
          blobStore,
          files: deps.files,
          limits: { maxFileBytes: limits.maxBytes, batchMaxFileBytes: limits.batchMaxBytes }
        })
        outcome = { state: 'completed', file }
      } catch (error) {
        // The content refused: nothing of the upload may remain. Anything else (storage,
        // database, quota, a part list to fix) leaves it pending for another try.
        if (error instanceof ApiError && CONTENT_REFUSALS.has(error.code ?? '')) outcome = { state: 'cancelled' }
        throw error
      } finally {
        const after = await store.transition(upload.id, outcome.state, outcome.file === undefined ? {} : { fileId: outcome.file.id })
          .catch((error: unknown) => { log.warn({ uploadId, err: error }, 'upload state not recorded after completion'); return null })
        if (outcome.state !== 'pending') {
          await removeParts(upload.id).catch((error: unknown) => { log.warn({ uploadId, err: error }, 'completed upload: parts left for reconciliation') })
        }
        if (outcome.file !== undefined && after === null) log.warn({ uploadId, fileId: outcome.file.id }, 'file made, upload not marked completed')
      }
      return { upload: { ...completing, state: 'completed', fileId: outcome.file?.id ?? null }, file: outcome.file ?? null }
    },

    async cancel (project, uploadId) {
      const upload = await get(project, uploadId)
      // Cancelling twice answers the cancelled upload, as a retried request expects.
      if (upload.state === 'cancelled') return upload
      await pending(project, uploadId)
      const cancelled = await store.transition(upload.id, 'cancelled', { liveAt: nowSeconds() })
      if (cancelled === null) throw await refusedState(project, upload.id, 'cancelled')
      await removeParts(upload.id)
      return cancelled
    },

    async expireDue (limit) {
      const now = nowSeconds()
      const expired = await store.expire(now, now - Math.ceil(deps.maxDurationMs / 1000), limit)
      let partErrors = 0
      for (const upload of expired) partErrors += await removeParts(upload.id)
      return { expired: expired.length, partErrors }
    }
  }
}

/** Refusals of the bytes themselves: the same bytes will never make a file. */
const CONTENT_REFUSALS: ReadonlySet<string> = new Set(['invalid_batch_file', 'md5_mismatch', 'file_too_large'])
