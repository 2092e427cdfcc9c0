import { WaitQueue } from './wait-queue.js'

/**
 * Adaptive concurrency for one upstream (issue 11 item 1): how many requests this replica
 * sends to it at once. AIMD, as TCP does it:
 * - slow start: until the first sign of overload the limit grows by one per success
 *   (doubling per round trip), so a fresh replica reaches a fast upstream's capacity in
 *   a few round trips instead of hundreds;
 * - additive increase: afterwards by 1/limit per success, about one per round trip,
 *   while answers are successful and their latency stays within LATENCY_TOLERANCE of
 *   the baseline (the lowest latency seen lately: what the upstream does unloaded); the
 *   latency judged is the upstream's: what this replica's own event loop added (its lag
 *   when the answer is read, loop-lag.ts) is taken off first;
 * - multiplicative decrease: × DECREASE on a 429, a 503, a timeout or a refused or reset
 *   connection, and on latency past the tolerance (a queue building up in the upstream
 *   before it refuses anything); at most once per round trip, so one burst of failures
 *   from requests sent at the old limit counts once;
 * - never above the ceiling (UPSTREAM_MAX_CONCURRENCY's share for this replica, which
 *   the replica registry re-balances as replicas come and go) nor below 1;
 * - `Retry-After` pauses the upstream for every line sending to it, not just the line
 *   that was told: no request goes out until the pause ends.
 * The clock is an argument (epoch ms) so every step can be tested.
 */

export type Signal = 'ok' | 'slow' | 'overload' | 'neutral'

const DECREASE = 0.7
const LATENCY_TOLERANCE = 2
/** The baseline forgets slowly: a better latency is taken at once, a worse one creeps in over ~1000 samples. */
const BASELINE_DRIFT = 0.001

export class UpstreamLimiter {
  #ceiling: number
  #limit: number
  #inFlight = 0
  #slowStart = true
  #baselineMs: number | null = null
  #lastDecreaseAt = Number.NEGATIVE_INFINITY
  #pausedUntil = 0
  readonly #waiters = new WaitQueue()
  #timer: NodeJS.Timeout | undefined
  readonly #clock: () => number
  readonly #localLagMs: () => number

  constructor (ceiling: number, options: { initial?: number, clock?: () => number, localLagMs?: () => number } = {}) {
    this.#ceiling = Math.max(1, ceiling)
    this.#limit = Math.min(this.#ceiling, Math.max(1, options.initial ?? 4))
    this.#clock = options.clock ?? Date.now
    this.#localLagMs = options.localLagMs ?? (() => 0)
  }

  get limit (): number {
    return Math.floor(this.#limit)
  }

  get inFlight (): number {
    return this.#inFlight
  }

  get ceiling (): number {
    return this.#ceiling
  }

  get pausedUntil (): number {
    return this.#pausedUntil
  }

  /** A new share of the deployment's ceiling (replicas came or went). */
  setCeiling (ceiling: number): void {
    this.#ceiling = Math.max(1, ceiling)
    this.#limit = Math.min(this.#limit, this.#ceiling)
    this.#drain()
  }

  /** Resolves true with a permit held, or false when `signal` aborts first. */
  async acquire (signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted === true) return false
    if (this.#inFlight < this.limit && this.#clock() >= this.#pausedUntil && this.#waiters.length === 0) {
      this.#inFlight++
      return true
    }
    // Woken by #drain with the permit already counted.
    const woken = this.#waiters.wait(signal)
    this.#armPauseTimer()
    return await woken
  }

  /** Gives the permit back with what the answer says about the upstream's load. */
  release (signal: Signal, latencyMs: number, retryAfterAt: number | null = null): void {
    this.#inFlight = Math.max(0, this.#inFlight - 1)
    const now = this.#clock()
    if (retryAfterAt !== null && retryAfterAt > this.#pausedUntil) this.#pausedUntil = retryAfterAt
    if (signal === 'ok') {
      // The baseline takes the latency as measured: never below the upstream's own, so its
      // minimum is a fair estimate. The lag only excuses a slow answer: it is the loop's
      // worst lateness of the last ~100 ms and may exceed what this answer waited, so
      // taking it off could only make an answer look faster (a baseline taken from such
      // a figure collapsed to 40 ms against a 100 ms upstream and held the limit at 1).
      if (this.#baselineMs === null || latencyMs < this.#baselineMs) this.#baselineMs = latencyMs
      else this.#baselineMs += (latencyMs - this.#baselineMs) * BASELINE_DRIFT
      const upstreamMs = latencyMs - this.#localLagMs()
      if (this.#baselineMs !== null && upstreamMs > Math.max(this.#baselineMs * LATENCY_TOLERANCE, this.#baselineMs + 5)) this.#decrease(now)
      else this.#limit = Math.min(this.#ceiling, this.#limit + (this.#slowStart ? 1 : 1 / this.#limit))
    } else if (signal === 'overload' || signal === 'slow') {
      this.#decrease(now)
    }
    this.#drain()
  }

  close (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #decrease (now: number): void {
    this.#slowStart = false
    // Once per round trip: the answers to requests sent before the last decrease say
    // nothing about the new limit.
    const roundTrip = Math.max(50, this.#baselineMs ?? 0)
    if (now - this.#lastDecreaseAt < roundTrip) return
    this.#lastDecreaseAt = now
    this.#limit = Math.max(1, this.#limit * DECREASE)
  }

  /** Hands permits to waiters, in order, while the limit and the pause allow. */
  #drain (): void {
    while (this.#waiters.length > 0 && this.#inFlight < this.limit && this.#clock() >= this.#pausedUntil) {
      this.#inFlight++
      this.#waiters.wakeNext()
    }
    if (this.#waiters.length > 0) this.#armPauseTimer()
  }

  #armPauseTimer (): void {
    const wait = this.#pausedUntil - this.#clock()
    if (wait <= 0 || this.#timer !== undefined) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#drain()
    }, wait)
    // Kept referenced: lines are waiting on it (close() clears it when the engine stops).
  }
}

/** What an outcome says about load: overload for 429/503/timeouts/refusals, ok for an answer, neutral otherwise. */
export function loadSignal (outcome: { kind: 'response', status: number } | { kind: 'transport', code: string }): Signal {
  if (outcome.kind === 'transport') {
    if (outcome.code === 'aborted' || outcome.code === 'response_too_large') return 'neutral'
    return 'overload'
  }
  if (outcome.status === 429 || outcome.status === 503) return 'overload'
  if (outcome.status >= 500) return 'neutral'
  return 'ok'
}

/** One limiter per upstream base URL, all with the same ceiling (this replica's share). */
export class UpstreamLimiters {
  readonly #limiters = new Map<string, UpstreamLimiter>()
  #ceiling: number
  readonly #clock: () => number
  readonly #localLagMs: () => number

  constructor (ceiling: number, options: { clock?: () => number, localLagMs?: () => number } = {}) {
    this.#ceiling = ceiling
    this.#clock = options.clock ?? Date.now
    this.#localLagMs = options.localLagMs ?? (() => 0)
  }

  for (upstream: string): UpstreamLimiter {
    let limiter = this.#limiters.get(upstream)
    if (limiter === undefined) {
      limiter = new UpstreamLimiter(this.#ceiling, { clock: this.#clock, localLagMs: this.#localLagMs })
      this.#limiters.set(upstream, limiter)
    }
    return limiter
  }

  get ceiling (): number {
    return this.#ceiling
  }

  setCeiling (ceiling: number): void {
    this.#ceiling = ceiling
    for (const limiter of this.#limiters.values()) limiter.setCeiling(ceiling)
  }

  entries (): IterableIterator<[string, UpstreamLimiter]> {
    return this.#limiters.entries()
  }

  close (): void {
    for (const limiter of this.#limiters.values()) limiter.close()
  }
}
