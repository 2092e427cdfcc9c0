/**
 * How late this process's own event loop is running: the part of a measured upstream
 * latency that the upstream did not cause. At C = 256 a replica's loop is busy enough that
 * answers wait 100–300 ms to be read after a burst (an fsync'd commit, a GC, a backlog of
 * answers); the adaptive limit took that for a queue in the upstream and cut itself to
 * 13–100 while the upstream answered in 100 ms (issue 11 item 5: 0.79× of C / L).
 *
 * A timer ticks every INTERVAL_MS; a tick's lateness is how long the loop was busy when it
 * was due. `lagMs()` is the larger of the latest ticks' lateness (the answers read just
 * after a long task waited about as long) and how overdue the next tick is now (the
 * answers read late in the same long task, before the timer could fire).
 */
export interface LoopLag {
  /** Milliseconds the loop has been running late lately; 0 on an idle loop. */
  lagMs: () => number
  stop: () => void
}

const INTERVAL_MS = 10
/** Ticks remembered: about 100 ms, the time a backlog read after a long task takes to drain. */
const WINDOW = 10

export function startLoopLag (now: () => number = () => performance.now()): LoopLag {
  const lateness = new Array<number>(WINDOW).fill(0)
  let at = 0
  let due = now() + INTERVAL_MS
  const timer = setInterval(() => {
    const t = now()
    lateness[at] = Math.max(0, t - due)
    at = (at + 1) % WINDOW
    due = t + INTERVAL_MS
  }, INTERVAL_MS)
  // Never what keeps a process alive.
  timer.unref()
  return {
    lagMs () {
      let max = Math.max(0, now() - due)
      for (const late of lateness) if (late > max) max = late
      return max
    },
    stop () { clearInterval(timer) }
  }
}
