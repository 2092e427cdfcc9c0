/**
 * Waiters in arrival order, each of which its AbortSignal can take out of line: the one
 * queue behind the request slots and the upstream limiters. Whoever wakes a waiter has
 * already counted what it grants (a slot, a permit), so a woken waiter holds it.
 */
export class WaitQueue {
  readonly #wakers: Array<() => void> = []

  get length (): number {
    return this.#wakers.length
  }

  /** Resolves true when `wakeNext` reaches this waiter, false when `signal` aborts first. */
  async wait (signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted === true) return false
    return await new Promise<boolean>((resolve) => {
      const onAbort = (): void => {
        const i = this.#wakers.indexOf(wake)
        if (i >= 0) this.#wakers.splice(i, 1)
        resolve(false)
      }
      const wake = (): void => {
        signal?.removeEventListener('abort', onAbort)
        resolve(true)
      }
      this.#wakers.push(wake)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** Wakes the longest waiting; false when nobody waits. */
  wakeNext (): boolean {
    const wake = this.#wakers.shift()
    if (wake === undefined) return false
    wake()
    return true
  }
}
