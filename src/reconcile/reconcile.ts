import type { FileStore } from '../metadata/file-store.js'
import type { BlobStore } from '../storage/blob-store.js'

export interface ReconcileDeps {
  fileStore: FileStore
  blobStore: BlobStore
  /** Milliseconds since the epoch. */
  now: () => number
  /**
   * Only objects, rows and unfinished writes older than this are touched: an upload
   * completes its object a moment before its row is written, and must not be mistaken
   * for an orphan in between.
   */
  graceMs: number
  /** Report what would be repaired, change nothing. */
  dryRun?: boolean
  log: { info: (obj: object, msg: string) => void, warn: (obj: object, msg: string) => void }
}

export interface ReconcileResult {
  /** Objects without a row, removed. */
  orphanObjects: string[]
  /** Rows whose object is missing, removed (the file was unreadable anyway). */
  danglingRows: string[]
  /** Unfinished writes removed (temp files, multipart uploads); null when the store cannot list them. */
  incompleteWrites: number | null
  scannedObjects: number
  scannedRows: number
}

const PAGE = 500
const OBJECT_PREFIX = 'files/'

/**
 * Repairs what a crash between the two halves of an upload or a delete can leave:
 * orphan objects (no row) and dangling rows (no object), plus unfinished writes.
 * Every repair is idempotent, so replicas may run it at the same time.
 */
export async function reconcile (deps: ReconcileDeps): Promise<ReconcileResult> {
  const cutoff = deps.now() - deps.graceMs
  const result: ReconcileResult = { orphanObjects: [], danglingRows: [], incompleteWrites: null, scannedObjects: 0, scannedRows: 0 }

  result.incompleteWrites = deps.dryRun === true ? null : await deps.blobStore.abortIncomplete(new Date(cutoff))

  let batch: string[] = []
  const settleObjects = async (): Promise<void> => {
    const known = await deps.fileStore.existingKeys(batch)
    for (const key of batch) {
      if (known.has(key)) continue
      result.orphanObjects.push(key)
      if (deps.dryRun !== true) await deps.blobStore.delete(key)
    }
    batch = []
  }
  for await (const object of deps.blobStore.list(OBJECT_PREFIX)) {
    result.scannedObjects++
    if (object.lastModified.getTime() > cutoff) continue
    batch.push(object.key)
    if (batch.length === PAGE) await settleObjects()
  }
  await settleObjects()

  const cutoffSeconds = Math.floor(cutoff / 1000)
  let after: string | undefined
  for (let rows = await deps.fileStore.scan(after, PAGE); rows.length > 0; rows = await deps.fileStore.scan(after, PAGE)) {
    result.scannedRows += rows.length
    after = rows.at(-1)?.id
    const old = rows.filter((row) => row.createdAt <= cutoffSeconds)
    const missing = await Promise.all(old.map(async (row) => ((await deps.blobStore.head(row.storageKey)) === null ? row : null)))
    for (const row of missing) {
      if (row === null) continue
      result.danglingRows.push(row.id)
      if (deps.dryRun !== true) await deps.fileStore.delete(row.project, row.id)
    }
  }

  const repaired = result.orphanObjects.length + result.danglingRows.length + (result.incompleteWrites ?? 0)
  const log = repaired > 0 ? deps.log.warn.bind(deps.log) : deps.log.info.bind(deps.log)
  log({ ...result, dryRun: deps.dryRun === true }, repaired > 0 ? 'reconciliation repaired storage and metadata' : 'reconciliation found nothing to repair')
  if (result.incompleteWrites === null && deps.dryRun !== true) {
    deps.log.warn({ driver: deps.blobStore.driver }, 'reconciliation: this store cannot list unfinished multipart uploads')
  }
  return result
}
