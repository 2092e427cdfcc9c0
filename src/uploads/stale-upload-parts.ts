import { uploadPartsPrefix } from '../ids.js'
import type { BlobStore } from '../storage/blob-store.js'
import type { UploadStore } from './upload-store.js'

/**
 * Part objects no upload will read again (issue 13, "the reconciler knows them"), once
 * older than the grace (which exceeds an upload's hour, so a live upload's parts are never
 * looked at):
 * - parts of an upload that is no longer pending (completed, cancelled, expired) or past
 *   its expiry: what a failed removal, or a crash between the state change and the
 *   removal, left;
 * - parts without a row whose upload exists: a crash (SIGKILL) between the object's put
 *   and its row.
 * Parts naming an upload the database does not have are kept and counted: that is what a
 * wrong database looks like, not debris (the rule of reconcile.ts and stale-parts.ts).
 */

export interface StaleUploadPartsResult {
  scanned: number
  removed: string[]
  /** Objects under the prefix whose upload is unknown to this database, or whose key is not a part's: kept. */
  unknown: number
}

const KEY = /^(upload_[0-9A-Za-z]+)\/(part_[0-9A-Za-z]+)$/
const PAGE = 500

export async function removeStaleUploadParts (deps: { blobStore: BlobStore, store: UploadStore, prefix: string, cutoffMs: number, dryRun?: boolean }): Promise<StaleUploadPartsResult> {
  const root = uploadPartsPrefix(deps.prefix)
  const result: StaleUploadPartsResult = { scanned: 0, removed: [], unknown: 0 }
  let page: Array<{ key: string, uploadId: string, partId: string }> = []
  // Expired before the cutoff, not merely before now: only what is past doubt is removed.
  const cutoffSeconds = Math.floor(deps.cutoffMs / 1000)

  const judgePage = async (): Promise<void> => {
    if (page.length === 0) return
    const uploads = await deps.store.statesOf([...new Set(page.map((p) => p.uploadId))])
    const recorded = await deps.store.existingParts(page.map((p) => p.partId))
    for (const part of page) {
      const upload = uploads.get(part.uploadId)
      if (upload === undefined) {
        result.unknown++
        continue
      }
      // Still `pending` past the grace means past its expiry too: the sweeper is late (or off).
      const live = (upload.state === 'pending' || upload.state === 'completing') && upload.expiresAt > cutoffSeconds
      if (!live || !recorded.has(part.partId)) {
        if (deps.dryRun !== true) await deps.blobStore.delete(part.key)
        result.removed.push(part.key)
      }
    }
    page = []
  }

  for await (const object of deps.blobStore.list(root)) {
    result.scanned++
    if (object.lastModified.getTime() > deps.cutoffMs) continue
    const match = KEY.exec(object.key.slice(root.length))
    if (match?.[1] === undefined || match[2] === undefined) {
      result.unknown++
      continue
    }
    page.push({ key: object.key, uploadId: match[1], partId: match[2] })
    if (page.length >= PAGE) await judgePage()
  }
  await judgePage()
  return result
}
