import { hostname } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FileService } from '../files/file-service.js'
import { ApiError } from '../errors.js'
import { ulid } from '../ids.js'
import type { BlobStore } from '../storage/blob-store.js'
import { createBatchTasks, type BatchTasks } from './batch-tasks.js'
import { ChunkFailedError, ChunkRun, type ChunkBatch, type EngineObserver } from './chunk-run.js'
import { LeaseLostError, type ClaimedChunk } from './lease.js'
import { startLoopLag, type LoopLag } from './loop-lag.js'
import { batchErrors, transitionBatch } from './lifecycle.js'
import { createBatchQueue, type BatchQueue } from './queue.js'
import { RequestSlots } from './request-slots.js'
import type { ResultFilesDeps } from './result-files.js'
import { createBatchResults } from './results.js'
import { RetryBudgets, type BackoffOptions, type Random } from './retry-policy.js'
import { toNumber, type BatchDatabase, type Dialect } from './tables.js'
import type { UpstreamClients } from './upstream-client.js'
import { UpstreamLimiters } from './upstream-limiter.js'
import type { UpstreamMap } from './upstream-url.js'
import { createWorkerRegistry, shareOf } from './worker-registry.js'
import type { Kysely } from 'kysely'

/**
 * The batch worker of one replica (issue 10 items 3, 6, 7): plain code that a plugin
 * starts and stops with the app, and that could run in a process of its own.
 *
 * One loop, woken by its timer (BATCH_POLL_INTERVAL_MS), by a chunk run ending and by
 * `wake()` (a batch created here):
 * - batch-level work that is due (batch-tasks.ts: plan, finalize, finish a cancel);
 * - claim chunks while the lines in hand are fewer than twice BATCH_CONCURRENCY: enough
 *   queued behind the requests in flight to keep every slot busy, few enough that a
 *   replica never sits on work another could run, and that the lines held in memory
 *   stay bounded during an outage (lines waiting to retry count as in hand);
 * - run each claimed chunk (chunk-run.ts); one RequestSlots bounds the requests in flight
 *   across all of them.
 * Three timers beside it: the heartbeat renews every held lease each third of its ttl (a
 * renewal refused stops that chunk's run: lease lost); the registration re-counts the
 * live replicas at most every 500 ms and re-takes this one's share of each upstream's
 * ceiling (worker-registry.ts, upstream-limiter.ts adapts below it; a replica joining
 * others waits two of those first); the status watch reads the
 * held batches' status every poll interval, so a cancel stops their runs within about
 * a second. `stop()` stops claiming, aborts requests in flight and hands every lease
 * back at once; a killed replica's leases lapse after BATCH_LEASE_TTL_MS instead.
 */

export interface BatchEngineOptions {
  /** This replica's name in leases; unique per process. */
  owner?: string
  concurrency: number
  chunkLines: number
  chunkBytes: number
  leaseTtlMs: number
  pollIntervalMs: number
  /** Requests in flight to one upstream from the whole deployment (UPSTREAM_MAX_CONCURRENCY); each replica takes its share. */
  upstreamCeiling: number
  maxLineBytes: number
  backoff: BackoffOptions
}

export interface BatchEngineDeps {
  db: Kysely<BatchDatabase>
  dialect: Dialect
  blobStore: BlobStore
  fileService: FileService
  /** Null: no upstream configured; batch-level work still runs, no chunk is claimed. */
  upstreams: UpstreamMap | null
  clients: UpstreamClients
  storagePrefix: string
  /** Epoch ms (result files' timestamps). */
  now: () => number
  log: { info: (obj: object, msg: string) => void, warn: (obj: object, msg: string) => void, error: (obj: object, msg: string) => void }
  observer?: EngineObserver
  random?: Random
}

export interface BatchEngine {
  readonly owner: string
  start: () => void
  /** Stops claiming, aborts requests in flight, hands every lease back. */
  stop: () => Promise<void>
  /** Look for work now (a batch was created here). */
  wake: () => void
  /** Upstream requests in flight now. */
  inFlight: () => number
  /** Chunks this replica holds now. */
  heldChunks: () => number
  /** Each upstream's adaptive limit, requests in flight and this replica's ceiling. */
  upstreamLimits: () => Array<{ upstream: string, limit: number, inFlight: number, ceiling: number }>
}

const NO_OBSERVER: EngineObserver = { sent () {}, answered () {}, retried () {}, recorded () {} }
/** Batches whose batch-level work one pass may take. */
const TASKS_PER_PASS = 8
/** Most chunks one claim statement leases. */
const MAX_CLAIM = 32

export function createBatchEngine (deps: BatchEngineDeps, options: BatchEngineOptions): BatchEngine {
  const owner = options.owner ?? `${hostname()}-${process.pid}-${ulid()}`
  const queue: BatchQueue = createBatchQueue(deps.db, deps.dialect)
  const results = createBatchResults(deps.db, deps.dialect)
  const resultFiles: ResultFilesDeps = { blobStore: deps.blobStore, results, fileService: deps.fileService, storagePrefix: deps.storagePrefix, now: deps.now }
  const tasks: BatchTasks = createBatchTasks({
    db: deps.db, dialect: deps.dialect, blobStore: deps.blobStore, fileService: deps.fileService, queue, resultFiles,
    plan: { maxLines: options.chunkLines, maxBytes: options.chunkBytes }, log: deps.log
  })
  const slots = new RequestSlots(options.concurrency)
  const registry = createWorkerRegistry(deps.db, deps.dialect, options.leaseTtlMs)
  // How often this replica re-counts the live ones and re-takes its share: more often than
  // leases are renewed, since a newcomer waits for it (join) and a share held past a join
  // may overshoot the ceiling. Two cheap statements a beat.
  const registryMs = Math.max(100, Math.min(500, Math.floor(options.leaseTtlMs / 3)))
  // Until the first heartbeat says otherwise, assume this replica is alone.
  // One lag monitor for every upstream's limiter (the loop is the replica's, not an
  // upstream's), ticking only while the engine runs.
  let loopLag: LoopLag | undefined
  const limiters = new UpstreamLimiters(options.upstreamCeiling, { localLagMs: () => loopLag?.lagMs() ?? 0 })
  const budgets = new RetryBudgets(deps.random === undefined ? {} : { random: deps.random })
  const observer = deps.observer ?? NO_OBSERVER
  const runs = new Map<string, { run: ChunkRun, done: Promise<void> }>()
  const batches = new Map<string, ChunkBatch>()

  let running = false
  let loop: Promise<void> | undefined
  let wakeUp: (() => void) | undefined
  let woken = false
  let heartbeat: { stop: () => Promise<void> } | undefined
  let registration: { stop: () => Promise<void> } | undefined
  let watch: { stop: () => Promise<void> } | undefined
  let lastTasks = 0
  // Aborts batch-level work (a plan or a finalize may take longer than a lease) on stop.
  let stopping = new AbortController()

  const wake = (): void => {
    woken = true
    wakeUp?.()
  }

  async function pause (ms: number): Promise<void> {
    if (woken) {
      woken = false
      return
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms)
      function done (): void {
        clearTimeout(timer)
        wakeUp = undefined
        resolve()
      }
      wakeUp = done
    })
    woken = false
  }

  async function batchFor (chunk: ClaimedChunk): Promise<ChunkBatch | null> {
    const known = batches.get(chunk.batchId)
    if (known !== undefined) return known
    const row = await deps.db.selectFrom('batches').select(['id', 'project', 'input_file_id', 'expires_at'])
      .where('id', '=', chunk.batchId).executeTakeFirst()
    if (row === undefined) return null
    try {
      const file = await deps.fileService.get(row.project, row.input_file_id)
      const batch: ChunkBatch = { id: row.id, inputKey: file.storageKey, deadlineMs: row.expires_at === null ? Number.MAX_SAFE_INTEGER : toNumber(row.expires_at) * 1000 }
      batches.set(row.id, batch)
      return batch
    } catch (error) {
      if (!(error instanceof ApiError) || error.statusCode !== 404) throw error
      // The input was deleted (or expired) under a running batch: nothing more can run.
      const errors = batchErrors('input_file_unavailable', `The input file ${row.input_file_id} was deleted or expired while the batch ran.`, 'input_file_id', null)
      await transitionBatch(deps.db, deps.dialect, { id: row.id }, 'failed', { errors })
      deps.log.warn({ batch: row.id }, 'batch failed: its input file is gone')
      return null
    }
  }

  function startRun (chunk: ClaimedChunk, batch: ChunkBatch, upstreams: UpstreamMap): void {
    // The deadline is the database's (expires_at); this replica's clock may be off by
    // seconds. The claim returned the database's now + ttl, so the offset is known here.
    const skew = chunk.leaseExpiresAtMs - options.leaseTtlMs - Date.now()
    const clock = (): number => Date.now() + skew
    const run = new ChunkRun({
      blobStore: deps.blobStore, queue, results, resultFiles, upstreams, clients: deps.clients, budgets, slots, limiters,
      backoff: options.backoff, maxLineBytes: options.maxLineBytes, random: deps.random ?? Math.random, clock, observer, log: deps.log
    }, chunk, batch)
    const key = `${chunk.batchId}/${chunk.seq}`
    const done = run.run().then((end) => {
      if (end === 'lease_lost') deps.log.warn({ batch: chunk.batchId, chunk: chunk.seq, epoch: chunk.epoch }, 'chunk lease lost; another replica holds it now')
    }, async (error: unknown) => {
      deps.log.error({ err: error, batch: chunk.batchId, chunk: chunk.seq }, 'chunk run failed; it was handed back with a backoff')
      // Failing still at the deadline: the batch cannot be finished (its lines cannot even
      // be read to be expired), so it fails, saying which lines, instead of running forever.
      if (error instanceof ChunkFailedError && clock() >= batch.deadlineMs) {
        const cause = error.cause instanceof Error ? error.cause.message : String(error.cause)
        const errors = batchErrors('batch_failed', `Lines ${chunk.lineStart}–${chunk.lineEnd - 1} could not be run before the batch expired: ${cause.slice(0, 500)}`, null, chunk.lineStart)
        await transitionBatch(deps.db, deps.dialect, { id: chunk.batchId }, 'failed', { errors }).catch(() => null)
      }
    }).finally(() => {
      runs.delete(key)
      if (![...runs.values()].some((r) => r.run.chunk.batchId === chunk.batchId)) batches.delete(chunk.batchId)
      wake()
    })
    runs.set(key, { run, done })
  }

  async function fill (upstreams: UpstreamMap): Promise<void> {
    let inHand = 0
    for (const { run } of runs.values()) inHand += run.pendingLines
    const room = 2 * options.concurrency - inHand
    if (room <= 0) return
    const limit = Math.min(MAX_CLAIM, Math.max(1, Math.ceil(room / options.chunkLines)))
    const claimed = await queue.claim(owner, limit, options.leaseTtlMs)
    for (const chunk of claimed) {
      const batch = await batchFor(chunk).catch((error: unknown) => {
        deps.log.warn({ err: error, batch: chunk.batchId }, 'could not look up a claimed chunk\'s batch; handing it back')
        return null
      })
      if (batch === null) {
        await queue.release(chunk).catch(() => {})
        continue
      }
      startRun(chunk, batch, upstreams)
    }
  }

  async function pass (): Promise<void> {
    const started = Date.now()
    // Batch-level work at most once per poll interval (it scans the active batches), and
    // at once when woken by a run that ended (its chunk may have been the batch's last).
    if (woken || started - lastTasks >= options.pollIntervalMs) {
      lastTasks = started
      await tasks.runDue(owner, options.leaseTtlMs, TASKS_PER_PASS, stopping.signal)
    }
    if (deps.upstreams !== null) await fill(deps.upstreams)
  }

  /** Registers this replica's heartbeat and takes its share of each upstream's ceiling; the replicas alive. */
  async function beat (): Promise<number> {
    const replicas = await registry.heartbeat(owner)
    limiters.setCeiling(shareOf(options.upstreamCeiling, replicas))
    return replicas
  }

  /**
   * A replica joining others sends nothing until each of them has had a heartbeat since it
   * registered: until then they still hold the larger share they took without it, and the
   * sum could pass the deployment's ceiling (seen: 14 in flight against a ceiling of 12,
   * three replicas, once the limiter stopped cutting itself for the loop's own lag). Two
   * registry intervals cover every other replica's next beat and the answers still in
   * flight above its new share; a lone replica starts at once.
   */
  async function join (): Promise<void> {
    const replicas = await beat()
    if (replicas <= 1) return
    await sleep(2 * registryMs, undefined, { signal: stopping.signal }).catch(() => {})
    if (running) await beat()
  }

  async function renewAll (): Promise<void> {
    for (const { run } of runs.values()) {
      if (run.stopReason !== null) continue
      await queue.renew(run.chunk, options.leaseTtlMs).catch((error: unknown) => {
        if (error instanceof LeaseLostError) run.stop('lease_lost')
        else deps.log.warn({ err: error, batch: run.chunk.batchId }, 'lease renewal failed; trying again at the next heartbeat')
      })
    }
  }

  async function watchStatus (): Promise<void> {
    const ids = [...new Set([...runs.values()].map((r) => r.run.chunk.batchId))]
    if (ids.length === 0) return
    const rows = await deps.db.selectFrom('batches').select(['id', 'status']).where('id', 'in', ids).execute()
    const status = new Map(rows.map((r) => [r.id, r.status]))
    for (const { run } of runs.values()) {
      const s = status.get(run.chunk.batchId)
      // Cancelling (or failed, or gone): stop sending; what was recorded is kept.
      if (s !== 'in_progress') run.stop('cancel')
    }
  }

  /** A job on a timer that never overlaps itself; `stop` clears it and waits for a run under way. */
  function every (ms: number, job: () => Promise<void>, name: string): { stop: () => Promise<void> } {
    let current: Promise<void> | undefined
    const timer = setInterval(() => {
      current ??= job().catch((error: unknown) => { deps.log.warn({ err: error }, `${name} failed`) }).finally(() => { current = undefined })
    }, ms)
    timer.unref()
    return { stop: async () => { clearInterval(timer); await current } }
  }

  return {
    owner,
    start () {
      if (running) return
      running = true
      stopping = new AbortController()
      loopLag = startLoopLag()
      heartbeat = every(Math.max(100, Math.floor(options.leaseTtlMs / 3)), renewAll, 'batch lease heartbeat')
      registration = every(registryMs, async () => {
        await beat().catch((error: unknown) => { deps.log.warn({ err: error }, 'worker heartbeat failed; keeping the current share') })
      }, 'batch worker heartbeat')
      watch = every(options.pollIntervalMs, watchStatus, 'batch status watch')
      loop = (async () => {
        await join().catch((error: unknown) => { deps.log.warn({ err: error }, 'worker registration failed; trying again at the next heartbeat') })
        while (running) {
          try {
            await pass()
          } catch (error) {
            // The database or the store is down: wait a poll interval and try again.
            deps.log.warn({ err: error }, 'batch worker pass failed; trying again')
          }
          if (running) await pause(options.pollIntervalMs)
        }
      })()
    },
    async stop () {
      if (!running) return
      running = false
      // Runs first, then the loop: a pass may be in the middle of a long finalize, and
      // the runs must not keep sending meanwhile. The heartbeat goes on until every run
      // has handed its chunk back, so no lease lapses into a takeover while stopping.
      stopping.abort()
      for (const { run } of runs.values()) run.stop('stop')
      wake()
      await loop
      // A run the last pass started after the first round of stops.
      for (const { run } of runs.values()) run.stop('stop')
      await Promise.all([...runs.values()].map((r) => r.done))
      await heartbeat?.stop()
      await registration?.stop()
      await watch?.stop()
      // Whatever a run could not hand back itself (its store call failed) goes back here.
      await queue.releaseOwned(owner).catch((error: unknown) => { deps.log.warn({ err: error }, 'could not hand back chunk leases; they lapse instead') })
      await tasks.releaseOwned(owner).catch(() => {})
      await registry.leave(owner).catch(() => {})
      limiters.close()
      loopLag?.stop()
      loopLag = undefined
    },
    wake,
    inFlight: () => slots.inUse,
    heldChunks: () => runs.size,
    upstreamLimits: () => [...limiters.entries()].map(([upstream, l]) => ({ upstream, limit: l.limit, inFlight: l.inFlight, ceiling: l.ceiling }))
  }
}
