import type { Expression, ExpressionBuilder, SqlBool } from 'kysely'
import type { BatchDatabase } from './tables.js'

/** What a claimer holds: the chunk and the epoch its claim wrote. Every write of the chunk's work carries it. */
export interface Lease {
  batchId: string
  seq: number
  epoch: number
}

/**
 * The fence: the chunk row `lease` still holds (its epoch, still leased). Every write of
 * leased work carries it in its WHERE, so a holder whose lease was taken over changes nothing.
 */
export function heldBy (lease: Lease) {
  return (eb: ExpressionBuilder<BatchDatabase, 'batch_chunks'>): Expression<SqlBool> => eb.and([
    eb('batch_id', '=', lease.batchId),
    eb('seq', '=', lease.seq),
    eb('lease_epoch', '=', lease.epoch),
    eb('state', '=', 'leased')
  ])
}

/**
 * The lease is no longer this holder's: another claimer took the chunk over (a higher
 * epoch), it was handed back, or it is done. The holder must stop the chunk's work and
 * write nothing more for it; whatever it already recorded stays valid (see queue.ts).
 * Not an ApiError: it never reaches a client, it steers the engine.
 */
export class LeaseLostError extends Error {
  readonly lease: Lease
  constructor (lease: Lease, action: string) {
    super(`lease of chunk ${lease.seq} of ${lease.batchId} at epoch ${lease.epoch} is lost: ${action} refused`)
    this.name = 'LeaseLostError'
    this.lease = lease
  }
}

/** One planned chunk: a byte range of the stored input and the lines it holds. */
export interface PlannedChunk {
  byteStart: number
  /** Exclusive. */
  byteEnd: number
  /** 1-based physical line number of the chunk's first line. */
  lineStart: number
  /** Exclusive. */
  lineEnd: number
}

/** A chunk as a claim hands it out: its plan, and the lease the claim wrote. */
export interface ClaimedChunk extends PlannedChunk, Lease {
  owner: string
  /** Unix milliseconds, database clock. */
  leaseExpiresAtMs: number
  /** Claims of this chunk so far, this one included. */
  attempts: number
}
