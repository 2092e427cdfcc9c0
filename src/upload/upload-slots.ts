/**
 * The per-replica bound on uploads in flight (MAX_CONCURRENT_UPLOADS). Every upload holds
 * buffers whose size the settings bound (docs/operations.md, "Memory"); bounding their number is what
 * makes the process's worst case a formula of the settings (issue #9 item 7). Counted in
 * this process, shared by both route families.
 */
export interface UploadSlots {
  /** 0: no bound. */
  readonly max: number
  readonly inUse: number
  /** A release function for a free slot, or null when all are taken (answer 503). */
  tryAcquire: () => (() => void) | null
}

export function createUploadSlots (max: number): UploadSlots {
  let inUse = 0
  return {
    max,
    get inUse () { return inUse },
    tryAcquire () {
      if (max > 0 && inUse >= max) return null
      inUse++
      let released = false
      // Idempotent, so a finally that runs after an early release cannot free a slot twice.
      return () => {
        if (released) return
        released = true
        inUse--
      }
    }
  }
}
