import type { BlobStore } from '../storage/blob-store.js'
import { ulid } from '../ids.js'
import type { ClaimedChunk } from './lease.js'
import { LeaseLostError } from './lease.js'
import { readChunkLines } from './plan.js'
import type { BatchQueue } from './queue.js'
import type { RequestSlots } from './request-slots.js'
import { answerLine, failureLine, resultKind, writeChunkParts, type ResultFilesDeps } from './result-files.js'
import type { BatchResults, LineResult } from './results.js'
import { decide, parseRetryAfter, type BackoffOptions, type Random, type RetryBudgets } from './retry-policy.js'
import type { UpstreamClients, UpstreamOutcome } from './upstream-client.js'
import { loadSignal, type UpstreamLimiters } from './upstream-limiter.js'
import { pickUpstream, type UpstreamBase, type UpstreamMap } from './upstream-url.js'
import { usageOf } from './usage.js'

/**
 * Running one leased chunk (issue 10 items 3–5): its lines are read with one ranged read,
 * those without a recorded result are sent, each with a request slot held only while it
 * is in flight, and each final result is recorded under the lease the moment it is known
 * (results.ts), so a crash re-sends only what was in flight. Retries wait here, in the
 * chunk, without a slot: 429 until its Retry-After, 408/5xx/transport with jittered
 * backoff, each retry asked of the upstream's budget, all until the batch's deadline,
 * when a line still unanswered is recorded as `batch_expired` (retry-policy.ts).
 *
 * How a run ends:
 * - every line recorded: its two part objects are written (under the lease's epoch)
 *   and the chunk completes (queue.complete), folding its counts into the batch;
 * - `cancel` (the batch is cancelling): requests in flight are aborted and record
 *   nothing, waiting lines are dropped, nothing more is sent; what was recorded is
 *   written out and the chunk completes, so completed results reach the output file;
 * - `stop` (this replica stops): the same aborts, then the chunk is handed back at once
 *   for another replica, its recorded results kept for the next holder;
 * - `lease_lost` (a write was refused by the fence): everything stops and nothing more
 *   is written; the new holder owns the chunk.
 */

export type StopReason = 'cancel' | 'stop' | 'lease_lost'

const FAILURE_BACKOFF_MS = 1000
const MAX_FAILURE_BACKOFF_MS = 60_000

/** The chunk could not be run (its input unreadable, the store or the database failing); it was handed back with a backoff. */
export class ChunkFailedError extends Error {
  readonly chunk: ClaimedChunk
  constructor (chunk: ClaimedChunk, cause: unknown) {
    super(`chunk ${chunk.seq} of ${chunk.batchId} failed (claim ${chunk.attempts}): ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
    this.name = 'ChunkFailedError'
    this.chunk = chunk
  }
}
export type RunEnd = 'completed' | StopReason

export interface ChunkBatch {
  id: string
  /** Where the batch's input lives. */
  inputKey: string
  /** The batch's expires_at, epoch ms. */
  deadlineMs: number
}

/** What the engine reports for /metrics; every method optional in effect (a no-op observer is fine). */
export interface EngineObserver {
  sent: (upstream: string) => void
  /** `outcome` is the HTTP status, or the transport error code. */
  answered: (upstream: string, outcome: string, seconds: number) => void
  retried: (upstream: string, reason: string) => void
  recorded: (kind: 'output' | 'error') => void
}

export interface ChunkRunDeps {
  blobStore: BlobStore
  queue: BatchQueue
  results: BatchResults
  resultFiles: ResultFilesDeps
  upstreams: UpstreamMap
  clients: UpstreamClients
  budgets: RetryBudgets
  slots: RequestSlots
  /** Adaptive concurrency per upstream, shared by every chunk run of the replica. */
  limiters: UpstreamLimiters
  backoff: BackoffOptions
  maxLineBytes: number
  random: Random
  /** Epoch ms, for retry times (the deadline itself is the database's). */
  clock: () => number
  observer: EngineObserver
  log: { warn: (obj: object, msg: string) => void }
}

interface ParsedLine {
  customId: string
  url: string
  body: unknown
}

function parseLine (text: string): ParsedLine {
  // The input was validated at upload: every line is an object with these fields.
  const value = JSON.parse(text) as { custom_id: string, url: string, body: unknown }
  return { customId: value.custom_id, url: value.url, body: value.body }
}

async function sleepUntil (at: number, now: number, signal: AbortSignal): Promise<boolean> {
  const ms = at - now
  if (ms <= 0) return !signal.aborted
  return await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve(true)
    }, ms)
    const onAbort = (): void => {
      clearTimeout(timer)
      resolve(false)
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

export class ChunkRun {
  readonly chunk: ClaimedChunk
  readonly batch: ChunkBatch
  readonly #deps: ChunkRunDeps
  readonly #controller = new AbortController()
  #reason: StopReason | null = null
  #failure: unknown = null
  /** Lines of the chunk not yet finished (recorded, or dropped by a stop): the engine's measure of work in hand. */
  #pending: number

  constructor (deps: ChunkRunDeps, chunk: ClaimedChunk, batch: ChunkBatch) {
    this.#deps = deps
    this.chunk = chunk
    this.batch = batch
    this.#pending = chunk.lineEnd - chunk.lineStart
  }

  get pendingLines (): number {
    return this.#pending
  }

  get stopReason (): StopReason | null {
    return this.#reason
  }

  /** Ends the run early; the first reason given wins. */
  stop (reason: StopReason): void {
    if (this.#reason !== null) return
    this.#reason = reason
    this.#controller.abort()
  }

  async run (): Promise<RunEnd> {
    const deps = this.#deps
    const signal = this.#controller.signal
    const inFlight = new Set<Promise<void>>()
    try {
      const recorded = new Set(await deps.results.recordedLines(this.chunk.batchId, this.chunk.seq))
      this.#pending -= recorded.size
      for await (const { lineNo, line } of readChunkLines(deps.blobStore, this.batch.inputKey, this.chunk, deps.maxLineBytes, signal)) {
        if (signal.aborted) break
        if (recorded.has(lineNo)) continue
        const parsed = parseLine(line.toString('utf8'))
        // The slot is taken before the next line is read: the reader never runs ahead of
        // the bound, so a chunk's lines are held in memory only while they are being sent.
        if (!await deps.slots.acquire(signal)) break
        const task = this.#line(lineNo, parsed).finally(() => { inFlight.delete(task) })
        inFlight.add(task)
      }
      await Promise.all(inFlight)
    } catch (error) {
      // A stop aborts the ranged read too; that is the stop, not a failure of the chunk.
      if (!signal.aborted) this.#fail(error)
      await Promise.all(inFlight)
    }
    const reason = this.#reason
    if (reason === 'lease_lost') return reason
    if (reason === 'stop') return await this.#handBack()
    // Every line recorded, or the batch is cancelling: write what was recorded, complete.
    try {
      await writeChunkParts(deps.resultFiles, this.chunk)
      await deps.queue.complete(this.chunk)
    } catch (error) {
      if (error instanceof LeaseLostError) return 'lease_lost'
      this.#fail(error)
      return await this.#handBack()
    }
    this.#pending = 0
    return reason ?? 'completed'
  }

  /** A failure of the chunk itself (storage, database): stop, hand it back with a backoff, report it. */
  #fail (error: unknown): void {
    this.#failure ??= error
    this.stop('stop')
  }

  /**
   * Hands the chunk back: at once after a stop (another replica takes it now), or after a
   * backoff growing with its claims when it failed, so a chunk that keeps failing (its
   * input unreadable) is not claimed again in a tight loop. A failure is then rethrown
   * for the engine to log and, past the deadline, to end the batch.
   */
  async #handBack (): Promise<'stop'> {
    const failed = this.#failure !== null
    const delay = failed ? Math.min(MAX_FAILURE_BACKOFF_MS, FAILURE_BACKOFF_MS * 2 ** Math.min(this.chunk.attempts - 1, 10)) : 0
    await this.#deps.queue.defer(this.chunk, delay).catch((error: unknown) => {
      if (!(error instanceof LeaseLostError)) throw error
    })
    if (failed) throw new ChunkFailedError(this.chunk, this.#failure)
    return 'stop'
  }

  /** One line: send (a slot is held on entry), decide, retry or record. Never throws. */
  async #line (lineNo: number, line: ParsedLine): Promise<void> {
    const deps = this.#deps
    const signal = this.#controller.signal
    let holding = true
    const free = (): void => {
      if (holding) deps.slots.release()
      holding = false
    }
    try {
      const pick = pickUpstream(deps.upstreams, line.body)
      if (!pick.ok) {
        await this.#record({ line: lineNo, customId: line.customId, kind: 'error', result: failureLine({ id: lineId(), customId: line.customId, code: pick.code, message: pick.message }) })
        return
      }
      const base = pick.base
      for (let attempt = 0; ; attempt++) {
        if (deps.clock() >= this.batch.deadlineMs) {
          await this.#expire(lineNo, line, 'The batch expired before this request could be sent.', Math.max(0, attempt - 1))
          return
        }
        // The slot stays held until the answer is recorded (finally), not only until it
        // arrives: an answer not yet recorded is re-sent after a crash, so it counts
        // against the bound as much as a request on the wire.
        const outcome = await this.#send(base, line, signal)
        const decision = decide({ outcome, attempt, now: deps.clock(), deadline: this.batch.deadlineMs, random: deps.random, backoff: deps.backoff })
        switch (decision.kind) {
          case 'abandon':
            return
          case 'success':
          case 'final': {
            if (outcome.kind === 'response') {
              deps.budgets.success(base.baseUrl)
              const kind = resultKind(outcome.status)
              const result = answerLine({ id: lineId(), customId: line.customId, statusCode: outcome.status, requestId: outcome.requestId ?? `req_${ulid()}`, body: outcome.body })
              await this.#record({ line: lineNo, customId: line.customId, kind, result, retries: attempt, ...(kind === 'output' ? optionalUsage(usageOf(outcome.body)) : {}) })
            } else {
              await this.#record({ line: lineNo, customId: line.customId, kind: 'error', result: failureLine({ id: lineId(), customId: line.customId, code: outcome.code, message: outcome.message }), retries: attempt })
            }
            return
          }
          case 'give_up':
            await this.#expire(lineNo, line, `The batch expired before this request succeeded (last: ${decision.reason}).`, attempt)
            return
          case 'retry': {
            // Waiting to retry holds no slot: the line is not in flight.
            free()
            deps.observer.retried(base.baseUrl, outcome.kind === 'response' ? String(outcome.status) : outcome.code)
            if (!await sleepUntil(decision.at, deps.clock(), signal)) return
            // The budget is asked at send time; a refusal defers, never fails (retry-policy.ts).
            for (;;) {
              const admission = deps.budgets.admit(base.baseUrl, this.batch.deadlineMs)
              if (admission.kind === 'send') break
              if (admission.kind === 'give_up') {
                await this.#expire(lineNo, line, 'The batch expired while the upstream was failing.', attempt)
                return
              }
              if (!await sleepUntil(admission.at, deps.clock(), signal)) return
            }
            if (!await deps.slots.acquire(signal)) return
            holding = true
            break
          }
        }
      }
    } catch (error) {
      // A record refused by the fence: the chunk is another holder's now.
      if (error instanceof LeaseLostError) this.stop('lease_lost')
      else this.#fail(error)
    } finally {
      free()
    }
  }

  /** Sends under the upstream's adaptive limit (upstream-limiter.ts), which the answer then adjusts. */
  async #send (base: UpstreamBase, line: ParsedLine, signal: AbortSignal): Promise<UpstreamOutcome> {
    const deps = this.#deps
    const limiter = deps.limiters.for(base.baseUrl)
    if (!await limiter.acquire(signal)) return { kind: 'transport', code: 'aborted', message: 'request aborted by the caller' }
    deps.observer.sent(base.baseUrl)
    const started = performance.now()
    const outcome = await deps.clients.send(base, { method: 'POST', url: line.url, body: line.body, signal })
    const ms = performance.now() - started
    const pause = outcome.kind === 'response' && (outcome.status === 429 || outcome.status === 503) ? parseRetryAfter(outcome.retryAfter, Date.now()) : null
    limiter.release(loadSignal(outcome), ms, pause)
    const label = outcome.kind === 'response' ? String(outcome.status) : outcome.code
    deps.observer.answered(base.baseUrl, label, ms / 1000)
    return outcome
  }

  /** `retries`: the times the line was re-sent (sends after its first) before it expired. */
  async #expire (lineNo: number, line: ParsedLine, message: string, retries = 0): Promise<void> {
    await this.#record({ line: lineNo, customId: line.customId, kind: 'error', result: failureLine({ id: lineId(), customId: line.customId, code: 'batch_expired', message }), retries })
  }

  async #record (result: LineResult): Promise<void> {
    // After a stop nothing more is written: the line is left for the next holder (a cancel
    // still records answers that arrived, as they are results the output file keeps).
    if (this.#reason === 'stop' || this.#reason === 'lease_lost') return
    const outcome = await this.#deps.results.record(this.chunk, result)
    this.#pending--
    if (outcome === 'recorded') this.#deps.observer.recorded(result.kind)
  }
}

function lineId (): string {
  return `batch_req_${ulid()}`
}

function optionalUsage (usage: ReturnType<typeof usageOf>): { usage?: NonNullable<ReturnType<typeof usageOf>> } {
  return usage === undefined ? {} : { usage }
}
