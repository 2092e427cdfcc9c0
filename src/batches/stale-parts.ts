import type { Kysely } from 'kysely'
import { batchPartsPrefix } from '../ids.js'
import type { BlobStore } from '../storage/blob-store.js'
import { sweepPrefix, type PrefixSweepResult } from '../storage/sweep-prefix.js'
import { isTerminal, type BatchStatus } from './lifecycle.js'
import { toNumber, type BatchDatabase } from './tables.js'

/**
 * Result parts no batch will read again (issue 10 item 6, "the reconciler knows batch
 * parts"): a part is needed while its batch runs and its epoch is its chunk's epoch
 * (result-files.ts names parts `<batch>/<seq>-<epoch>.<kind>.jsonl`). Removable, once
 * older than the grace:
 * - parts of a batch that is terminal: finalize removes them after recording the files,
 *   so these are what a failed removal or a crash right after left;
 * - parts whose epoch is not the chunk's: a holder that lost its lease wrote them (a
 *   zombie), or one whose complete was refused.
 * Parts naming a batch or chunk the database does not have are left alone and counted:
 * that is what a wrong database looks like, not debris (the same rule as reconcile.ts).
 */

export type StalePartsResult = PrefixSweepResult

const KEY = /^(batch_[0-9A-Za-z]+)\/(\d{10})-(\d+)\.(output|error)\.jsonl$/

export async function removeStaleParts (deps: { blobStore: BlobStore, db: Kysely<BatchDatabase>, prefix: string, cutoffMs: number, dryRun?: boolean }): Promise<StalePartsResult> {
  return await sweepPrefix({
    blobStore: deps.blobStore,
    root: batchPartsPrefix(deps.prefix),
    cutoffMs: deps.cutoffMs,
    ...(deps.dryRun === undefined ? {} : { dryRun: deps.dryRun }),
    parse: (relative) => {
      const match = KEY.exec(relative)
      return match === null ? null : { batchId: match[1]!, seq: Number(match[2]), epoch: Number(match[3]) }
    },
    judge: async (page) => {
      const batchIds = [...new Set(page.map((p) => p.batchId))]
      const batches = new Map((await deps.db.selectFrom('batches').select(['id', 'status']).where('id', 'in', batchIds).execute())
        .map((b) => [b.id, b.status as BatchStatus]))
      const chunks = new Map((await deps.db.selectFrom('batch_chunks').select(['batch_id', 'seq', 'lease_epoch']).where('batch_id', 'in', batchIds).execute())
        .map((c) => [`${c.batch_id}/${c.seq}`, toNumber(c.lease_epoch)]))
      return page.map((part) => {
        const status = batches.get(part.batchId)
        const epoch = chunks.get(`${part.batchId}/${part.seq}`)
        if (status === undefined || epoch === undefined) return 'unknown'
        return isTerminal(status) || epoch !== part.epoch ? 'remove' : 'keep'
      })
    }
  })
}
