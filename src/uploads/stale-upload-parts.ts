import { uploadPartsPrefix } from '../ids.js'
import type { BlobStore } from '../storage/blob-store.js'
import { sweepPrefix, type PrefixSweepResult } from '../storage/sweep-prefix.js'
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

export type StaleUploadPartsResult = PrefixSweepResult

const KEY = /^(upload_[0-9A-Za-z]+)\/(part_[0-9A-Za-z]+)$/

export async function removeStaleUploadParts (deps: { blobStore: BlobStore, store: UploadStore, prefix: string, cutoffMs: number, dryRun?: boolean }): Promise<StaleUploadPartsResult> {
  // Expired before the cutoff, not merely before now: only what is past doubt is removed.
  const cutoffSeconds = Math.floor(deps.cutoffMs / 1000)
  return await sweepPrefix({
    blobStore: deps.blobStore,
    root: uploadPartsPrefix(deps.prefix),
    cutoffMs: deps.cutoffMs,
    ...(deps.dryRun === undefined ? {} : { dryRun: deps.dryRun }),
    parse: (relative) => {
      const match = KEY.exec(relative)
      return match?.[1] === undefined || match[2] === undefined ? null : { uploadId: match[1], partId: match[2] }
    },
    judge: async (page) => {
      const uploads = await deps.store.statesOf([...new Set(page.map((p) => p.uploadId))])
      const recorded = await deps.store.existingParts(page.map((p) => p.partId))
      return page.map((part) => {
        const upload = uploads.get(part.uploadId)
        if (upload === undefined) return 'unknown'
        // Still `pending` past the grace means past its expiry too: the sweeper is late (or off).
        const live = (upload.state === 'pending' || upload.state === 'completing') && upload.expiresAt > cutoffSeconds
        return !live || !recorded.has(part.partId) ? 'remove' : 'keep'
      })
    }
  })
}
