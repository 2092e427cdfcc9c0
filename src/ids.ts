import { randomFillSync } from 'node:crypto'
import { decodeTime, incrementBase32, MAX_ULID, monotonicFactory, ulid as ulidOf, type PRNG } from 'ulid'
import { BATCH_ID_PATTERN } from '../schemas/batches.js'
import { FILE_ID_PATTERN } from '../schemas/files.js'

const RANDOM_POOL_BYTES = 4096
const randomPool = Buffer.alloc(RANDOM_POOL_BYTES)
let randomAt = RANDOM_POOL_BYTES

/**
 * The ulid package's own generator asks the OS for one byte per character, sixteen calls an
 * id: 6 % of the batch engine's CPU at 2,000 lines a second (two ids a line). The same
 * cryptographic bytes, drawn from a pool refilled 4 KiB at a time; byte / 256 is what the
 * package's generator returns too, so the characters stay uniform.
 */
const pooledRandom: PRNG = () => {
  if (randomAt === RANDOM_POOL_BYTES) {
    randomFillSync(randomPool)
    randomAt = 0
  }
  return (randomPool[randomAt++] ?? 0) / 256
}

/** A ULID of `nowMs` (default now), its random part from the pool. */
export function ulid (nowMs?: number): string {
  return ulidOf(nowMs, pooledRandom)
}

const FILE_ID = new RegExp(FILE_ID_PATTERN)
const BATCH_ID = new RegExp(BATCH_ID_PATTERN)
const FILE_ID_PREFIX = 'file-'

/**
 * File ids are `file-` + a ULID, minted when the file is committed (FileStore.insertNext),
 * never when its upload starts: lexical order is then commit order, which keyset
 * pagination relies on (issue 9, item 6).
 */
export function isFileId (value: string): boolean {
  return FILE_ID.test(value)
}

/**
 * The next file id after `lastId` (the greatest id committed so far, if any): a new ULID
 * of `nowMs` when the clock has moved past the last id's time, else the last id plus one
 * (a clock behind the last id, or several commits in one millisecond), so the result is
 * always strictly greater, as in the ULID spec's monotonic mode.
 */
export function nextFileId (lastId: string | undefined, nowMs: number): string {
  if (lastId === undefined || !isFileId(lastId)) return FILE_ID_PREFIX + ulid(nowMs)
  const last = lastId.slice(FILE_ID_PREFIX.length)
  if (nowMs > decodeTime(last)) return FILE_ID_PREFIX + ulid(nowMs)
  if (last === MAX_ULID) throw new RangeError('file ids are exhausted (the greatest id is the largest ULID)')
  return FILE_ID_PREFIX + incrementBase32(last)
}

/**
 * Names one upload's object before its file exists (the file id comes only at commit).
 * Unique per upload; nothing sorts by it, so its time part carries no meaning.
 */
export function newUploadId (): string {
  return `upload-${ulid()}`
}

// Monotonic within this process, so batches created in one millisecond still list in
// creation order; across replicas ids are ordered by their milliseconds only, which is
// all a keyset page by id needs (the order is total either way).
const batchUlid = monotonicFactory(pooledRandom)

/** Batch ids are `batch_` + a ULID (OpenAI's are `batch_…`), minted when the batch is created. */
export function newBatchId (nowMs: number = Date.now()): string {
  return `batch_${batchUlid(nowMs)}`
}

export function isBatchId (value: string): boolean {
  return BATCH_ID.test(value)
}

/** The default STORAGE_PREFIX: every object key of the service starts with it. */
export const DEFAULT_STORAGE_PREFIX = 'files/'

/** Object key of an upload: from the project and the upload id, never from the client's filename. */
export function objectKeyFor (project: string, uploadId: string, prefix: string = DEFAULT_STORAGE_PREFIX): string {
  return `${prefix}${project}/${uploadId}`
}

/**
 * Where the batch engine keeps per-chunk result parts, beside the file objects: no file
 * row names them, so reconciliation leaves them to the batch engine, which knows which
 * parts its chunks still need.
 */
export function batchPartsPrefix (prefix: string = DEFAULT_STORAGE_PREFIX): string {
  return `${prefix}batch-parts/`
}

const uploadUlid = monotonicFactory()

/**
 * Ids of OpenAI's Uploads API: `upload_` and `part_` + a ULID (OpenAI's are `upload_…` and
 * `part_…`). Not `upload-`: that names an object being written by `POST /files`.
 */
export function newUploadObjectId (nowMs: number = Date.now()): string {
  return `upload_${uploadUlid(nowMs)}`
}

export function newPartId (nowMs: number = Date.now()): string {
  return `part_${uploadUlid(nowMs)}`
}

/**
 * Where the parts of OpenAI uploads live until their upload is completed, cancelled or
 * expired: beside the file objects, named by upload and part, never by a file row, so
 * reconciliation leaves them to src/uploads/stale-upload-parts.ts.
 */
export function uploadPartsPrefix (prefix: string = DEFAULT_STORAGE_PREFIX): string {
  return `${prefix}upload-parts/`
}

export function uploadPartKey (uploadId: string, partId: string, prefix: string = DEFAULT_STORAGE_PREFIX): string {
  return `${uploadPartsPrefix(prefix)}${uploadId}/${partId}`
}
