import type { FileStore } from '../metadata/file-store.js'
import type { BlobStore } from '../storage/blob-store.js'

export interface SweepDeps {
  fileStore: FileStore
  blobStore: BlobStore
  /** Milliseconds since the epoch. */
  now: () => number
  batchSize: number
  log: { info: (obj: object, msg: string) => void, warn: (obj: object, msg: string) => void }
}

export interface SweepResult {
  deleted: number
  /** Objects whose removal failed; their rows are gone, reconciliation removes the orphans. */
  objectErrors: number
}

/**
 * Deletes expired files in batches until none is left. The row goes first, in one
 * statement that hands each row to one sweeper only (FileStore.deleteExpired), so
 * replicas sweeping at once never delete an object twice; an expired file is already
 * invisible (404, absent from lists) before it is swept.
 */
export async function sweepExpired (deps: SweepDeps): Promise<SweepResult> {
  const result: SweepResult = { deleted: 0, objectErrors: 0 }
  const now = Math.floor(deps.now() / 1000)
  for (;;) {
    const batch = await deps.fileStore.deleteExpired(now, deps.batchSize)
    await Promise.all(batch.map(async (record) => {
      try {
        await deps.blobStore.delete(record.storageKey)
      } catch (error) {
        result.objectErrors++
        deps.log.warn({ fileId: record.id, err: error }, 'expired file: row deleted, object removal failed')
      }
    }))
    result.deleted += batch.length
    if (batch.length < deps.batchSize) break
  }
  if (result.deleted > 0) deps.log.info({ ...result }, 'expired files swept')
  return result
}
