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
  readonly #waiters: Array<{ grant: () => void, cancel: () => void }> = []

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
    return await new Promise<boolean>((resolve) => {
      const onAbort = (): void => {
        const i = this.#waiters.indexOf(waiter)
        if (i >= 0) this.#waiters.splice(i, 1)
        resolve(false)
      }
      const waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort)
          resolve(true)
        },
        cancel: onAbort
      }
      this.#waiters.push(waiter)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  release (): void {
    const next = this.#waiters.shift()
    // The slot passes straight to the next waiter: the count does not change.
    if (next !== undefined) next.grant()
    else if (this.#used > 0) this.#used--
  }
}
