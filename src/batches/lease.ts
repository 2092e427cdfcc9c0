/** What a claimer holds: the chunk and the epoch its claim wrote. Every write of the chunk's work carries it. */
export interface Lease {
  batchId: string
  seq: number
  epoch: number
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
