import type { Kysely } from 'kysely'
import { COMPLETION_WINDOW_SECONDS } from '../../schemas/batches.js'
import { ERRORS } from '../errors.js'
import type { FileService } from '../files/file-service.js'
import { isBatchId, newBatchId } from '../ids.js'
import { BlobNotFoundError, type BlobStore } from '../storage/blob-store.js'
import { getBatch, insertBatch, listBatches, type BatchPage, type BatchRecord, type ListBatchesQuery } from './batch-store.js'
import { readFirstRequest } from './first-line.js'
import { transitionBatch } from './lifecycle.js'
import type { BatchDatabase, Dialect } from './tables.js'
import { pickUpstream, type UpstreamMap } from './upstream-url.js'

export interface CreateBatchInput {
  project: string
  inputFileId: string
  endpoint: string
  completionWindow: keyof typeof COMPLETION_WINDOW_SECONDS
  metadata?: Record<string, string> | null
  /** Lifetime of the output and error files, in seconds after they are created. */
  outputExpiresAfterSeconds?: number | null
}

export interface BatchServiceLog {
  warn: (obj: object, msg: string) => void
}

export interface BatchServiceDeps {
  db: Kysely<BatchDatabase>
  dialect: Dialect
  /** The one owner of file lookups: the input file is found through it, scoped to the project. */
  files: FileService
  /** Read once per create, for the first line of the input file. */
  blobStore: BlobStore
  /** Null when no upstream is configured: creating is then refused (503). */
  upstreams: UpstreamMap | null
  /** BATCH_ALLOWED_URLS: the endpoints a batch may use. */
  allowedUrls: readonly string[]
  /** BATCH_MAX_LINE_BYTES: the longest line the validator let through. */
  maxLineBytes: number
  /**
   * Called after a batch is created (to wake the batch engine). A notice only: the batch is
   * in the database already and the engine finds it at its next poll, so a throwing
   * listener is logged and the create still succeeds.
   */
  onCreated?: (batch: BatchRecord) => void
  log: BatchServiceLog
}

/**
 * The Batches API without HTTP (issue 10 item 1): create checks what cannot run and
 * inserts the batch in `validating`, where the batch engine takes it on; every lookup is
 * scoped to the project, another project's batch or file does not exist (404).
 */
export interface BatchService {
  create: (input: CreateBatchInput) => Promise<BatchRecord>
  /** The project's batch with its counts and usage current, or 404. */
  get: (project: string, id: string) => Promise<BatchRecord>
  /** A keyset page of the project's batches, newest first. */
  list: (project: string, query: ListBatchesQuery) => Promise<BatchPage>
  /**
   * Asks a validating or running batch to stop (→ `cancelling`; the engine makes it
   * `cancelled`). A batch past that point (finalizing, cancelling, or terminal) is answered
   * as it is, never stuck in `cancelling` (llm-d batch-gateway #146).
   */
  cancel: (project: string, id: string) => Promise<BatchRecord>
}

export function createBatchService (deps: BatchServiceDeps): BatchService {
  const { db, dialect, files, blobStore } = deps

  async function get (project: string, id: string): Promise<BatchRecord> {
    const batch = isBatchId(id) ? await getBatch(db, id, project) : null
    if (batch === null) throw ERRORS.batchNotFound(id)
    return batch
  }

  /** The input file's first request, or the refusal naming what cannot run. */
  async function checkInput (input: CreateBatchInput): Promise<{ model: string | null }> {
    const found = await files.find(input.project, input.inputFileId)
    if (found === null) throw ERRORS.inputFileNotFound(input.inputFileId)
    const { record, expired } = found
    if (expired) throw ERRORS.inputFileExpired(record.id)
    if (record.purpose !== 'batch') throw ERRORS.inputFileNotBatch(record.id, record.purpose)
    const read = await readFirstRequest(blobStore, record.storageKey, deps.maxLineBytes).catch((error: unknown) => {
      // Deleted between the lookup and the read: for this caller the file is gone.
      if (error instanceof BlobNotFoundError) throw ERRORS.inputFileNotFound(input.inputFileId)
      throw ERRORS.contentUnavailable(record.id, error)
    })
    if (!read.ok) throw ERRORS.inputFileUnreadable(record.id, read.why)
    if (read.request.url !== input.endpoint) throw ERRORS.endpointMismatch(record.id, read.request.url, input.endpoint)
    return { model: read.request.model }
  }

  return {
    get,

    async create (input) {
      const upstreams = deps.upstreams
      if (upstreams === null) throw ERRORS.upstreamNotConfigured()
      // The route's schema holds endpoint to these too; a caller without the route must as well.
      if (!deps.allowedUrls.includes(input.endpoint)) {
        throw ERRORS.invalidParameter('endpoint', `'${input.endpoint}' is not one of ${deps.allowedUrls.map((u) => `'${u}'`).join(', ')} - 'endpoint'`)
      }
      const { model } = await checkInput(input)
      // A model no upstream serves would fail every line; refused now, while the caller is
      // there to read why, rather than as a batch whose every line fails.
      if (!pickUpstream(upstreams, model === null ? {} : { model }).ok) throw ERRORS.modelNotRouted(input.inputFileId, model)
      const batch = await insertBatch(db, dialect, {
        id: newBatchId(),
        project: input.project,
        endpoint: input.endpoint,
        model,
        inputFileId: input.inputFileId,
        completionWindow: input.completionWindow,
        completionWindowSeconds: COMPLETION_WINDOW_SECONDS[input.completionWindow],
        metadata: input.metadata ?? null,
        outputExpiresAfterSeconds: input.outputExpiresAfterSeconds ?? null
      })
      try {
        deps.onCreated?.(batch)
      } catch (error) {
        deps.log.warn({ batchId: batch.id, err: error }, 'batch created; the onCreated listener threw (the engine finds the batch at its next poll)')
      }
      return batch
    },

    async list (project, query) {
      return await listBatches(db, project, query)
    },

    async cancel (project, id) {
      if (!isBatchId(id)) throw ERRORS.batchNotFound(id)
      // Refused (null) when the batch is missing, another project's, or past cancelling;
      // the batch is then answered as it is, or 404.
      await transitionBatch(db, dialect, { id, project }, 'cancelling')
      return await get(project, id)
    }
  }
}
