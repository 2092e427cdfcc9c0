import type { FileRecord, FileStore } from '../metadata/file-store.js'
import type { BlobInfo, BlobStore } from '../storage/blob-store.js'
import { batchPartsPrefix, DEFAULT_STORAGE_PREFIX, uploadPartsPrefix } from '../ids.js'
import { removeStaleParts } from '../batches/stale-parts.js'
import { removeStaleUploadParts } from '../uploads/stale-upload-parts.js'
import { createUploadStore } from '../uploads/upload-store.js'
import { deploymentMarkerKey } from './deployment.js'
import { mergeJoin } from './merge-join.js'

export interface ReconcileDeps {
  fileStore: FileStore
  blobStore: BlobStore
  /** Milliseconds since the epoch. */
  now: () => number
  /**
   * Only objects, rows and unfinished writes older than this are touched: it exceeds the
   * longest an upload may run (UPLOAD_MAX_DURATION_MS), so no upload in flight is.
   */
  graceMs: number
  /** STORAGE_PREFIX: nothing outside it is listed, removed or aborted. */
  prefix?: string
  /** Most objects plus rows one run may remove (RECONCILE_MAX_REMOVALS). */
  maxRemovals: number
  /** Report what would be repaired, change nothing. */
  dryRun?: boolean
  /** An operator confirmed (`files-api reconcile --yes`): repair even what looks unsafe. */
  confirmed?: boolean
  log: { info: (obj: object, msg: string) => void, warn: (obj: object, msg: string) => void, error: (obj: object, msg: string) => void }
}

export type RefusalReason = 'storage_empty' | 'storage_foreign' | 'database_empty' | 'too_many_removals'

export interface ReconcileResult {
  /** Objects without a row: removed, or found only (dry run, refusal); at most maxRemovals + 1 listed. */
  orphanObjects: string[]
  /** Rows (ids) whose object is missing: removed, or found only; at most maxRemovals + 1 listed. */
  danglingRows: string[]
  /** Unfinished writes removed (temp files, multipart uploads); null when not swept or not listable. */
  incompleteWrites: number | null
  scannedObjects: number
  scannedRows: number
  /** Objects that have their row. */
  matched: number
  /** Why nothing was repaired although repairs were found, or null. */
  refused: { reason: RefusalReason, message: string } | null
  /** Batch result parts no batch needs any more (src/batches/stale-parts.ts): removed, or found only (dry run); null when not looked at (a refusal). */
  staleParts: number | null
  /** Parts of OpenAI uploads no upload needs any more (src/uploads/stale-upload-parts.ts), as staleParts. */
  staleUploadParts: number | null
}

const PAGE = 500
/** Keys in a log line: enough to look at, bounded however much is wrong. */
export const LOG_SAMPLE_KEYS = 20

/**
 * Repairs what a crash between the two halves of an upload or a delete can leave:
 * orphan objects (no row) and dangling rows (no object), plus unfinished writes. The
 * store's listing and the rows, both in key order, are compared as a merge join (no
 * request per row). When what it found looks like a wrong pairing rather than crash
 * debris, it repairs nothing and says why (issue 9, item 4).
 */
export async function reconcile (deps: ReconcileDeps): Promise<ReconcileResult> {
  const prefix = deps.prefix ?? DEFAULT_STORAGE_PREFIX
  const cutoff = deps.now() - deps.graceMs
  const cutoffSeconds = Math.floor(cutoff / 1000)
  const marker = deploymentMarkerKey(prefix)
  const result: ReconcileResult = { orphanObjects: [], danglingRows: [], incompleteWrites: null, scannedObjects: 0, scannedRows: 0, matched: 0, refused: null, staleParts: null, staleUploadParts: null }
  const orphans: string[] = []
  const dangling: FileRecord[] = []
  // Beyond the bound the run refuses anyway: keeping more would only grow memory.
  const keep = deps.maxRemovals + 1

  for await (const pair of mergeJoin(objectsOf(deps.blobStore, prefix, marker), rowsOf(deps.fileStore, prefix))) {
    if (pair.object !== undefined) result.scannedObjects++
    if (pair.row !== undefined) result.scannedRows++
    if (pair.object !== undefined && pair.row !== undefined) result.matched++
    else if (pair.object !== undefined && pair.object.lastModified.getTime() <= cutoff && orphans.length < keep) orphans.push(pair.object.key)
    else if (pair.row !== undefined && pair.row.createdAt <= cutoffSeconds && dangling.length < keep) dangling.push(pair.row)
  }
  result.orphanObjects = orphans
  result.danglingRows = dangling.map((row) => row.id)
  result.refused = judge(result, deps.maxRemovals)

  if (result.refused !== null && deps.confirmed !== true) {
    deps.log.error({ ...summary(result), reason: result.refused.reason, dryRun: deps.dryRun === true },
      `reconciliation refused to repair: ${result.refused.message}; confirm with \`files-api reconcile --yes\` once checked`)
    return result
  }
  const parts = await removeStaleParts({ blobStore: deps.blobStore, db: deps.fileStore.batchDb, prefix, cutoffMs: cutoff, dryRun: deps.dryRun === true })
  result.staleParts = parts.removed.length
  if (parts.unknown > 0) deps.log.warn({ unknownParts: parts.unknown }, 'reconciliation: batch parts name batches this database does not have; they are kept')
  const uploadParts = await removeStaleUploadParts({ blobStore: deps.blobStore, store: createUploadStore(deps.fileStore.uploadDb, deps.fileStore.dialect), prefix, cutoffMs: cutoff, dryRun: deps.dryRun === true })
  result.staleUploadParts = uploadParts.removed.length
  if (uploadParts.unknown > 0) deps.log.warn({ unknownUploadParts: uploadParts.unknown }, 'reconciliation: upload parts name uploads this database does not have; they are kept')
  if (deps.dryRun === true) {
    deps.log.info({ ...summary(result), dryRun: true }, 'reconciliation dry run: nothing changed')
    return result
  }

  result.incompleteWrites = await deps.blobStore.abortIncomplete(new Date(cutoff), prefix)
  // Asked again just before removing: a row written since the listing (it cannot be, past
  // the grace, but a clock can lie) keeps its object.
  for (let i = 0; i < orphans.length; i += PAGE) {
    const batch = orphans.slice(i, i + PAGE)
    const known = await deps.fileStore.existingKeys(batch)
    for (const key of batch) if (!known.has(key)) await deps.blobStore.delete(key)
  }
  for (const row of dangling) await deps.fileStore.delete(row.project, row.id)

  const repaired = orphans.length + dangling.length + (result.incompleteWrites ?? 0) + result.staleParts + result.staleUploadParts
  const log = repaired > 0 ? deps.log.warn.bind(deps.log) : deps.log.info.bind(deps.log)
  log(summary(result), repaired > 0 ? 'reconciliation repaired storage and metadata' : 'reconciliation found nothing to repair')
  if (result.incompleteWrites === null) {
    deps.log.warn({ driver: deps.blobStore.driver }, 'reconciliation: this store cannot list unfinished multipart uploads')
  }
  return result
}

/**
 * What crash debris never looks like. A crash leaves a few orphans or dangling rows
 * beside many matched files; an unmounted volume, a wrong bucket or a fresh database
 * leaves one side empty or nothing matching at all.
 */
export function judge (result: Pick<ReconcileResult, 'orphanObjects' | 'danglingRows' | 'scannedObjects' | 'scannedRows' | 'matched'>, maxRemovals: number): ReconcileResult['refused'] {
  const removals = result.orphanObjects.length + result.danglingRows.length
  if (removals === 0) return null
  if (result.scannedObjects === 0 && result.scannedRows > 0) {
    return { reason: 'storage_empty', message: `the storage holds no object under the prefix while the database holds ${result.scannedRows} files` }
  }
  if (result.scannedRows === 0 && result.scannedObjects > 0) {
    return { reason: 'database_empty', message: `the database holds no file while the storage holds ${result.scannedObjects} objects` }
  }
  if (result.matched === 0) {
    return { reason: 'storage_foreign', message: `none of ${result.scannedObjects} objects has a row and none of ${result.scannedRows} rows has an object: storage and database do not belong together` }
  }
  if (removals > maxRemovals) {
    return { reason: 'too_many_removals', message: `the run would remove ${removals > maxRemovals + 1 ? `more than ${maxRemovals}` : removals} objects and rows, over RECONCILE_MAX_REMOVALS=${maxRemovals}` }
  }
  return null
}

/** Counts and a few sample keys: a log line stays small however much is wrong. */
function summary (result: ReconcileResult): object {
  return {
    scannedObjects: result.scannedObjects,
    scannedRows: result.scannedRows,
    matched: result.matched,
    orphanObjects: result.orphanObjects.length,
    danglingRows: result.danglingRows.length,
    incompleteWrites: result.incompleteWrites,
    staleParts: result.staleParts,
    staleUploadParts: result.staleUploadParts,
    sampleOrphanObjects: result.orphanObjects.slice(0, LOG_SAMPLE_KEYS),
    sampleDanglingRows: result.danglingRows.slice(0, LOG_SAMPLE_KEYS)
  }
}

/** Our objects that files may name: not the deployment marker, not the batch engine's parts, not uploads' parts. */
async function * objectsOf (store: BlobStore, prefix: string, marker: string): AsyncIterable<{ key: string, value: BlobInfo }> {
  const parts = batchPartsPrefix(prefix)
  const uploadParts = uploadPartsPrefix(prefix)
  for await (const object of store.list(prefix)) {
    if (object.key !== marker && !object.key.startsWith(parts) && !object.key.startsWith(uploadParts)) yield { key: object.key, value: object }
  }
}

/**
 * Rows whose key lies outside the prefix (written under another STORAGE_PREFIX) are not
 * compared, nor rows under the parts prefixes that objectsOf leaves out: a project may be
 * named `batch-parts` or `upload-parts`, and its files' objects, not listed, would make
 * their rows look dangling.
 */
async function * rowsOf (store: FileStore, prefix: string): AsyncIterable<{ key: string, value: FileRecord }> {
  const skipped = [batchPartsPrefix(prefix), uploadPartsPrefix(prefix)]
  let after: string | undefined
  for (let rows = await store.scanByStorageKey(after, PAGE); rows.length > 0; rows = await store.scanByStorageKey(after, PAGE)) {
    after = rows.at(-1)?.storageKey
    for (const row of rows) {
      if (row.storageKey.startsWith(prefix) && !skipped.some((parts) => row.storageKey.startsWith(parts))) yield { key: row.storageKey, value: row }
    }
  }
}
