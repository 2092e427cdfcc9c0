/**
 * What to do after one upstream outcome (issue 10 item 4), as pure functions: the clock
 * (`now`, epoch ms) and the random source are arguments, so every value is testable.
 *
 * - 2xx → `success`.
 * - 429 → retry at `Retry-After` (delta-seconds or an HTTP date, RFC 9110 §10.2.3); a
 *   503 that sends one is honoured too (RFC 9110 defines it for 503). No header → backoff.
 * - 408, 5xx and transport failures (refused, reset, timeouts) → retry after
 *   exponential backoff with full jitter: random() × min(cap, base × 2^attempt)
 *   ("Exponential Backoff And Jitter", AWS Architecture Blog): spreads a thundering herd
 *   of lines that failed together over the whole window.
 * - other 4xx, and an answer over the size bound → `final` (sending it again gets the same).
 * - `aborted` is the caller's own cancel: `abandon`, record nothing.
 * Retries have no attempt limit: they continue until the batch's `expires_at`, so an
 * outage defers lines and never fails them; a retry time past the deadline is
 * `give_up` with `batch_expired`, which the engine writes to the error file.
 *
 * The retry budget is per upstream, not per request (the shape of gRPC's retry
 * throttling and Finagle's RetryBudget): a token bucket that each success fills by
 * `ratio` and a trickle fills by `minPerSecond`, up to `maxTokens`; each retry sent takes
 * one token. With the upstream down there are no successes, so retries to it fall to
 * the trickle rate however many lines wait; once it answers again the successes refill
 * the bucket and retries speed back up. The budget is asked at send time
 * (`admitRetry`), not when the retry was scheduled: a retry it refuses costs nothing and
 * is deferred to when a token will be there (jittered, so the waiting lines do not all
 * wake together), still bounded by the deadline — refused retries are never failed.
 */
import type { UpstreamOutcome } from './upstream-client.js'

export interface BackoffOptions {
  readonly baseMs: number
  readonly capMs: number
}

export interface BudgetOptions {
  /** Tokens a success adds: retries are held to about this fraction of successes. */
  readonly ratio: number
  /** Tokens added per second regardless, so a dead upstream is still probed. */
  readonly minPerSecond: number
  /** The bucket's size: the burst of retries allowed after a quiet period. */
  readonly maxTokens: number
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, capMs: 60_000 }
export const DEFAULT_BUDGET: BudgetOptions = { ratio: 0.5, minPerSecond: 5, maxTokens: 100 }

/** A source of uniform numbers in [0, 1), like Math.random. */
export type Random = () => number

export type Decision =
  | { readonly kind: 'success' }
  | { readonly kind: 'retry', readonly at: number, readonly reason: string }
  | { readonly kind: 'final', readonly reason: string }
  | { readonly kind: 'give_up', readonly code: 'batch_expired', readonly reason: string }
  | { readonly kind: 'abandon' }

export interface DecideInput {
  readonly outcome: UpstreamOutcome
  /** Retries already made for this line (0 after the first send). */
  readonly attempt: number
  readonly now: number
  /** The batch's expires_at, epoch ms. */
  readonly deadline: number
  readonly random: Random
  readonly backoff?: BackoffOptions
}

/**
 * `Retry-After` as an absolute time, or null when absent or unreadable. A date in the
 * past means "now". Seconds must be a non-negative integer (RFC 9110's delay-seconds).
 */
export function parseRetryAfter (value: string | null, now: number): number | null {
  if (value === null) return null
  const text = value.trim()
  if (/^\d+$/.test(text)) return now + Number(text) * 1000
  // Only the date forms: Date.parse alone would read "1.5" or "tomorrow" as something.
  if (!/^[A-Za-z]{3},? /.test(text)) return null
  const date = Date.parse(text)
  if (Number.isNaN(date)) return null
  return Math.max(now, date)
}

/** Full jitter: uniform in [0, min(cap, base × 2^attempt)). */
export function backoffDelay (attempt: number, random: Random, options: BackoffOptions = DEFAULT_BACKOFF): number {
  const ceiling = Math.min(options.capMs, options.baseMs * 2 ** Math.min(attempt, 52))
  return Math.floor(random() * ceiling)
}

function retryOrExpire (at: number, deadline: number, reason: string): Decision {
  if (at > deadline) return { kind: 'give_up', code: 'batch_expired', reason: `${reason}; the retry would pass the batch's deadline` }
  return { kind: 'retry', at, reason }
}

export function decide (input: DecideInput): Decision {
  const { outcome, attempt, now, deadline, random } = input
  const backoff = input.backoff ?? DEFAULT_BACKOFF
  if (outcome.kind === 'transport') {
    if (outcome.code === 'aborted') return { kind: 'abandon' }
    if (outcome.code === 'response_too_large') return { kind: 'final', reason: outcome.message }
    return retryOrExpire(now + backoffDelay(attempt, random, backoff), deadline, outcome.code)
  }
  const { status } = outcome
  if (status >= 200 && status < 300) return { kind: 'success' }
  if (status === 429 || status === 503) {
    const after = parseRetryAfter(outcome.retryAfter, now)
    if (after !== null) return retryOrExpire(after, deadline, `status ${status} with Retry-After`)
    return retryOrExpire(now + backoffDelay(attempt, random, backoff), deadline, `status ${status}`)
  }
  if (status === 408 || status >= 500) {
    return retryOrExpire(now + backoffDelay(attempt, random, backoff), deadline, `status ${status}`)
  }
  return { kind: 'final', reason: `status ${status}` }
}

export interface BudgetState {
  readonly tokens: number
  /** When `tokens` was last brought up to date, epoch ms. */
  readonly at: number
}

export function newBudget (now: number, options: BudgetOptions = DEFAULT_BUDGET): BudgetState {
  return { tokens: options.maxTokens, at: now }
}

function refill (state: BudgetState, now: number, options: BudgetOptions): BudgetState {
  const elapsed = Math.max(0, now - state.at)
  return { tokens: Math.min(options.maxTokens, state.tokens + (elapsed / 1000) * options.minPerSecond), at: Math.max(now, state.at) }
}

/** A success (any final answer from a live upstream counts: it answered) fills the bucket. */
export function recordSuccess (state: BudgetState, now: number, options: BudgetOptions = DEFAULT_BUDGET): BudgetState {
  const current = refill(state, now, options)
  return { tokens: Math.min(options.maxTokens, current.tokens + options.ratio), at: current.at }
}

export type Admission =
  | { readonly kind: 'send' }
  | { readonly kind: 'defer', readonly at: number }
  | { readonly kind: 'give_up', readonly code: 'batch_expired', readonly reason: string }

/**
 * Ask the upstream's budget before sending a retry. `send` takes a token; `defer`
 * takes none and names when to ask again: when the trickle will have made a token,
 * plus up to as long again at random.
 */
export function admitRetry (state: BudgetState, now: number, deadline: number, random: Random,
  options: BudgetOptions = DEFAULT_BUDGET): { state: BudgetState, admission: Admission } {
  const current = refill(state, now, options)
  if (current.tokens >= 1) return { state: { tokens: current.tokens - 1, at: current.at }, admission: { kind: 'send' } }
  const waitMs = ((1 - current.tokens) / options.minPerSecond) * 1000
  const at = now + Math.ceil(waitMs * (1 + random()))
  if (at > deadline) {
    return { state: current, admission: { kind: 'give_up', code: 'batch_expired', reason: 'retry budget exhausted until past the batch\'s deadline' } }
  }
  return { state: current, admission: { kind: 'defer', at } }
}

/**
 * The budgets of every upstream, for the engine that holds them across lines. A thin
 * keeper around the pure functions above; the clock and random source are handed in.
 */
export class RetryBudgets {
  readonly #states = new Map<string, BudgetState>()
  readonly #options: BudgetOptions
  readonly #clock: () => number
  readonly #random: Random

  constructor (options: { budget?: BudgetOptions, clock?: () => number, random?: Random } = {}) {
    this.#options = options.budget ?? DEFAULT_BUDGET
    this.#clock = options.clock ?? Date.now
    this.#random = options.random ?? Math.random
  }

  #state (upstream: string, now: number): BudgetState {
    return this.#states.get(upstream) ?? newBudget(now, this.#options)
  }

  success (upstream: string): void {
    const now = this.#clock()
    this.#states.set(upstream, recordSuccess(this.#state(upstream, now), now, this.#options))
  }

  admit (upstream: string, deadline: number): Admission {
    const now = this.#clock()
    const { state, admission } = admitRetry(this.#state(upstream, now), now, deadline, this.#random, this.#options)
    this.#states.set(upstream, state)
    return admission
  }

  tokens (upstream: string): number {
    const now = this.#clock()
    return refill(this.#state(upstream, now), now, this.#options).tokens
  }
}
