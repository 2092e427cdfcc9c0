import { WaitQueue } from './wait-queue.js'

/**
 * The per-replica bound on upstream requests in flight (BATCH_CONCURRENCY): a counting
 * semaphore whose waiters queue in arrival order. It is what makes "a crash re-sends at
 * most BATCH_CONCURRENCY requests" true: a line holds a slot from just before its send
 * until its answer is recorded in the database or its retry is scheduled, never while
 * it waits to retry.
 */
export class RequestSlots {
  readonly #max: number
  #used = 0
  readonly #waiters = new WaitQueue()

  constructor (max: number) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`slots must be a positive integer, got ${max}`)
    this.#max = max
  }

  get inUse (): number {
    return this.#used
  }

  get waiting (): number {
    return this.#waiters.length
  }

  /** Resolves true with a slot held, or false when `signal` aborts first (no slot held then). */
  async acquire (signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted === true) return false
    if (this.#used < this.#max && this.#waiters.length === 0) {
      this.#used++
      return true
    }
    return await this.#waiters.wait(signal)
  }

  release (): void {
    // The slot passes straight to the next waiter: the count does not change.
    if (!this.#waiters.wakeNext() && this.#used > 0) this.#used--
  }
}
