import { sql, type Kysely } from 'kysely'
import { ApiError } from '../errors.js'
import type { FileService } from '../files/file-service.js'
import type { BlobStore } from '../storage/blob-store.js'
import { dbNowMs } from './db-clock.js'
import { batchErrors, transitionBatch, type BatchStatus } from './lifecycle.js'
import { planBatchInput, type PlanLimits } from './plan.js'
import type { BatchQueue } from './queue.js'
import { doneChunks, finalizeResultFiles, type ResultFilesDeps, type ResultFileIds } from './result-files.js'
import { toNumber, type BatchDatabase, type Dialect } from './tables.js'

/**
 * The work on a whole batch, beside the chunks' (issue 10 item 6), done by whichever
 * worker replica finds it first:
 * - plan a `validating` batch: one streaming pass over its input makes the chunks
 *   (plan.ts, idempotent), then `in_progress` with request_counts.total; an input that
 *   cannot run makes it `failed` with `errors`;
 * - finalize an `in_progress` batch whose chunks are all done: `finalizing`, the output
 *   and error files (result-files.ts), then `completed` with their ids; past the
 *   completion window it becomes `expired` instead (its unrun lines were recorded as
 *   `batch_expired` by the chunk runs);
 * - finish a `cancelling` batch once no chunk is leased: its queued chunks (and leases
 *   that lapsed) are sealed, the files are made from what was recorded, then `cancelled`;
 * - finalize again a `finalizing` batch whose finalizer died.
 *
 * Each is done under a lease on the batch row (worker_owner / worker_expires_at_ms,
 * migration 0006), renewed while it runs, and the final transition is fenced by it
 * (transitionBatch's workerOwner): a finalizer that lost its lease cannot record its
 * files, and finalizeResultFiles then deletes them again. Result files are committed
 * before the transition that names them, so a crash between the two leaves a complete
 * file that no batch names (listed, with purpose batch_output) and a retry that makes
 * another; the parts stay until the ids are recorded, so no result is ever lost.
 */

export interface BatchTasksDeps {
  db: Kysely<BatchDatabase>
  dialect: Dialect
  blobStore: BlobStore
  fileService: FileService
  queue: BatchQueue
  resultFiles: ResultFilesDeps
  plan: PlanLimits
  log: { info: (obj: object, msg: string) => void, warn: (obj: object, msg: string) => void }
}

export interface BatchTasks {
  /** Does the batch-level work that is due, a few batches at a time; returns how many batches it moved. */
  runDue: (owner: string, ttlMs: number, limit: number, signal?: AbortSignal) => Promise<number>
  /** Hands back every batch lease of `owner` (a stopping replica). */
  releaseOwned: (owner: string) => Promise<void>
}

interface DueBatch {
  id: string
  project: string
  status: BatchStatus
  inputFileId: string
  expiresAtMs: number | null
  outputExpiresAfterSeconds: number | null
}

/** How long a batch whose batch-level work failed is left alone before any replica tries again. */
const FAILURE_HOLD_MS = 30_000

export function createBatchTasks (deps: BatchTasksDeps): BatchTasks {
  const { db, dialect } = deps
  const now = dbNowMs(dialect)
  const leaseFree = sql<boolean>`(b.worker_owner is null or b.worker_expires_at_ms < ${now})`

  async function due (limit: number): Promise<DueBatch[]> {
    const { rows } = await sql<{
      id: string, project: string, status: BatchStatus, input_file_id: string,
      expires_at: number | string | null, output_expires_after_seconds: number | string | null
    }>`
      select b.id, b.project, b.status, b.input_file_id, b.expires_at, b.output_expires_after_seconds
      from batches b
      where ${leaseFree} and (
        b.status = 'validating'
        or b.status = 'finalizing'
        or (b.status = 'in_progress' and not exists (
          select 1 from batch_chunks c where c.batch_id = b.id and c.state <> 'done'))
        or (b.status = 'cancelling' and not exists (
          select 1 from batch_chunks c where c.batch_id = b.id and c.state = 'leased' and c.lease_expires_at_ms >= ${now}))
      )
      order by b.created_at, b.id
      limit ${limit}`.execute(db)
    return rows.map((r) => ({
      id: r.id,
      project: r.project,
      status: r.status,
      inputFileId: r.input_file_id,
      expiresAtMs: r.expires_at === null ? null : toNumber(r.expires_at) * 1000,
      outputExpiresAfterSeconds: r.output_expires_after_seconds === null ? null : toNumber(r.output_expires_after_seconds)
    }))
  }

  async function lease (id: string, owner: string, ttlMs: number): Promise<boolean> {
    const row = await db.updateTable('batches')
      .set({ worker_owner: owner, worker_expires_at_ms: sql<number>`${now} + ${ttlMs}` })
      .where('id', '=', id)
      .where(sql<boolean>`(worker_owner is null or worker_expires_at_ms < ${now} or worker_owner = ${owner})`)
      .returning('id')
      .executeTakeFirst()
    return row !== undefined
  }

  async function unlease (id: string, owner: string): Promise<void> {
    await db.updateTable('batches').set({ worker_owner: null, worker_expires_at_ms: null })
      .where('id', '=', id).where('worker_owner', '=', owner).execute()
  }

  /** Extends only a lease this owner still holds: a late renewal never takes a batch back. */
  async function renew (id: string, owner: string, ttlMs: number): Promise<void> {
    await db.updateTable('batches').set({ worker_expires_at_ms: sql<number>`${now} + ${ttlMs}` })
      .where('id', '=', id).where('worker_owner', '=', owner).execute()
  }

  /**
   * Keeps the batch lease while `work` runs (a large finalize may outlast one ttl). After
   * a failure the lease is kept for FAILURE_HOLD_MS instead of handed back: the batch
   * then drops out of `due` for a while, so a few batches that keep failing (a store
   * down) cannot hold up the work of every newer batch behind them.
   */
  async function leased<T> (id: string, owner: string, ttlMs: number, work: () => Promise<T>): Promise<T> {
    let renewing: Promise<void> | undefined
    const timer = setInterval(() => {
      renewing ??= renew(id, owner, ttlMs).catch(() => {}).finally(() => { renewing = undefined })
    }, Math.max(100, Math.floor(ttlMs / 3)))
    timer.unref()
    let failed = false
    try {
      return await work()
    } catch (error) {
      failed = true
      throw error
    } finally {
      clearInterval(timer)
      await renewing
      if (failed) await renew(id, owner, FAILURE_HOLD_MS).catch(() => {})
      else await unlease(id, owner).catch(() => {})
    }
  }

  async function fail (batch: DueBatch, owner: string, code: string, message: string, param: string | null): Promise<void> {
    const errors = batchErrors(code, message, param, null)
    await transitionBatch(db, dialect, { id: batch.id, workerOwner: owner }, 'failed', { errors })
    deps.log.warn({ batch: batch.id, code }, 'batch failed: its input cannot run')
  }

  async function planOne (batch: DueBatch, owner: string, signal?: AbortSignal): Promise<void> {
    let storageKey: string
    try {
      storageKey = (await deps.fileService.get(batch.project, batch.inputFileId)).storageKey
    } catch (error) {
      if (error instanceof ApiError && error.statusCode === 404) {
        await fail(batch, owner, 'input_file_unavailable', `The input file ${batch.inputFileId} was deleted or expired before the batch started.`, 'input_file_id')
        return
      }
      throw error
    }
    let plan: Awaited<ReturnType<typeof planBatchInput>>
    try {
      plan = await planBatchInput(deps.blobStore, storageKey, deps.plan, signal)
    } catch (error) {
      // Only a file without a request line is refused by the planner; a storage failure is tried again.
      if (error instanceof RangeError && signal?.aborted !== true) {
        await fail(batch, owner, 'empty_file', 'The input file has no request line.', 'input_file_id')
        return
      }
      throw error
    }
    await deps.queue.plan(batch.id, plan.chunks)
    // The total first, on its own: a batch cancelled meanwhile still shows its size.
    await db.updateTable('batches').set({ request_total: plan.requests }).where('id', '=', batch.id).execute()
    const moved = await transitionBatch(db, dialect, { id: batch.id, workerOwner: owner }, 'in_progress', { requestTotal: plan.requests })
    if (moved !== null) deps.log.info({ batch: batch.id, requests: plan.requests, chunks: plan.chunks.length }, 'batch planned')
  }

  /**
   * Seals a cancelling batch's chunks that are not done and not under a live lease: the
   * state change and the epoch bump fence any holder whose lease lapsed, so nothing is
   * recorded for them after this. True when no live lease is left.
   */
  async function seal (batchId: string): Promise<boolean> {
    await sql`
      update batch_chunks set state = 'sealed', lease_owner = null, lease_expires_at_ms = null, lease_epoch = lease_epoch + 1
      where batch_id = ${batchId}
        and (state = 'queued' or (state = 'leased' and lease_expires_at_ms < ${now}))`.execute(db)
    const live = await db.selectFrom('batch_chunks').select('seq')
      .where('batch_id', '=', batchId).where('state', '=', 'leased').executeTakeFirst()
    return live === undefined
  }

  /**
   * Makes the files and records them with the terminal status, fenced by the batch
   * lease, in one transaction that also folds the sealed chunks' rows into the counts
   * and removes them. Returns false when the transition was refused (files removed).
   */
  async function finalize (batch: DueBatch, owner: string, to: 'completed' | 'expired' | 'cancelled', signal?: AbortSignal): Promise<boolean> {
    const chunks = await doneChunks(db, batch.id)
    let moved = false
    const record = async (ids: ResultFileIds): Promise<void> => {
      moved = await recordFiles(ids).catch(async (error: unknown) => {
        // The commit may have happened although the client saw an error (a connection
        // lost at COMMIT): if the batch names these files, they are its results and must
        // stay; finalizeResultFiles deletes what it made only when this throws.
        const row = await db.selectFrom('batches').select(['output_file_id', 'error_file_id', 'status']).where('id', '=', batch.id).executeTakeFirst()
        if (row !== undefined && row.status === to && row.output_file_id === ids.outputFileId && row.error_file_id === ids.errorFileId) return true
        throw error
      })
      // Throwing makes finalizeResultFiles delete the files it just made.
      if (!moved) throw new FinalizeRefused()
    }
    const recordFiles = async (ids: ResultFileIds): Promise<boolean> => {
      return await db.transaction().execute(async (trx) => {
        const done = await transitionBatch(trx, dialect, { id: batch.id, workerOwner: owner }, to, ids)
        if (done === null) return false
        if (chunks.some((c) => c.sealed === true)) {
          await sql`
            update batches set
              request_completed = request_completed + (select count(*) from batch_results r where r.batch_id = ${batch.id} and r.kind = 'output'),
              request_failed = request_failed + (select count(*) from batch_results r where r.batch_id = ${batch.id} and r.kind <> 'output'),
              usage_input_tokens = usage_input_tokens + coalesce((select sum(usage_input_tokens) from batch_results r where r.batch_id = ${batch.id}), 0),
              usage_cached_tokens = usage_cached_tokens + coalesce((select sum(usage_cached_tokens) from batch_results r where r.batch_id = ${batch.id}), 0),
              usage_output_tokens = usage_output_tokens + coalesce((select sum(usage_output_tokens) from batch_results r where r.batch_id = ${batch.id}), 0),
              usage_reasoning_tokens = usage_reasoning_tokens + coalesce((select sum(usage_reasoning_tokens) from batch_results r where r.batch_id = ${batch.id}), 0),
              usage_total_tokens = usage_total_tokens + coalesce((select sum(usage_total_tokens) from batch_results r where r.batch_id = ${batch.id}), 0),
              upstream_retries = upstream_retries + coalesce((select sum(upstream_retries) from batch_results r where r.batch_id = ${batch.id}), 0)
            where id = ${batch.id}`.execute(trx)
          await trx.deleteFrom('batch_results').where('batch_id', '=', batch.id).execute()
          await trx.updateTable('batch_chunks').set({ state: 'done' }).where('batch_id', '=', batch.id).where('state', '=', 'sealed').execute()
        }
        return true
      })
    }
    try {
      await finalizeResultFiles(deps.resultFiles, {
        batchId: batch.id,
        project: batch.project,
        expiresAfterSeconds: batch.outputExpiresAfterSeconds,
        chunks,
        onCommitted: record,
        ...(signal === undefined ? {} : { signal })
      })
    } catch (error) {
      if (error instanceof FinalizeRefused) return false
      throw error
    }
    deps.log.info({ batch: batch.id, status: to }, 'batch finished')
    return moved
  }

  async function runOne (batch: DueBatch, owner: string, ttlMs: number, signal?: AbortSignal): Promise<boolean> {
    if (!await lease(batch.id, owner, ttlMs)) return false
    return await leased(batch.id, owner, ttlMs, async () => {
      switch (batch.status) {
        case 'validating':
          // Never planned within its window (its input unreadable all along): nothing ran.
          if (batch.expiresAtMs !== null && await dbNow() >= batch.expiresAtMs) {
            return await transitionBatch(db, dialect, { id: batch.id, workerOwner: owner }, 'expired') !== null
          }
          await planOne(batch, owner, signal)
          return true
        case 'in_progress': {
          // Expired when a chunk finished past the deadline (its unrun lines were recorded
          // batch_expired); a batch whose every chunk was done in time is completed, however
          // late this finalize runs.
          if (await finishedLate(batch)) return await finalize(batch, owner, 'expired', signal)
          if (await transitionBatch(db, dialect, { id: batch.id, workerOwner: owner }, 'finalizing') === null) return false
          return await finalize(batch, owner, 'completed', signal)
        }
        case 'finalizing':
          return await finalize(batch, owner, 'completed', signal)
        case 'cancelling':
          if (!await seal(batch.id)) return false
          return await finalize(batch, owner, 'cancelled', signal)
        default:
          return false
      }
    })
  }

  async function finishedLate (batch: DueBatch): Promise<boolean> {
    if (batch.expiresAtMs === null) return false
    const row = await db.selectFrom('batch_chunks').select((eb) => eb.fn.max('done_at_ms').as('last')).where('batch_id', '=', batch.id).executeTakeFirst()
    return row?.last != null && toNumber(row.last) >= batch.expiresAtMs
  }

  async function dbNow (): Promise<number> {
    const { rows } = await sql<{ ms: number | string }>`select ${now} as ms`.execute(db)
    return toNumber(rows[0]?.ms ?? 0)
  }

  return {
    async runDue (owner, ttlMs, limit, signal) {
      let moved = 0
      // A function, not a narrowed expression: the signal may abort during any await.
      const aborted = (): boolean => signal?.aborted === true
      for (const batch of await due(limit)) {
        if (aborted()) break
        try {
          if (await runOne(batch, owner, ttlMs, signal)) moved++
        } catch (error) {
          // One batch's failure (storage down) must not stop the others; it is tried again.
          if (!aborted()) deps.log.warn({ err: error, batch: batch.id, status: batch.status }, 'batch work failed; it will be tried again')
        }
      }
      return moved
    },
    async releaseOwned (owner) {
      await db.updateTable('batches').set({ worker_owner: null, worker_expires_at_ms: null }).where('worker_owner', '=', owner).execute()
    }
  }
}

class FinalizeRefused extends Error {
  constructor () {
    super('the batch moved on (or its lease was taken over) before its result files were recorded')
  }
}
