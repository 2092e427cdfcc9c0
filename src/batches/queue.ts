/**
 * The batch queue: planned chunks in the metadata database, claimed under leases fenced
 * by an epoch (issue 10 item 3). SQLite (one node) and PostgreSQL (any number of
 * replicas) run the same protocol; only the claim's locking clause and the clock
 * expression differ. Every time is the database's clock (db-clock.ts).
 *
 * Protocol
 * - plan: the planner inserts every chunk of a batch (a byte range of the stored input
 *   and the lines it holds) in one transaction, state `queued`, epoch 0.
 * - claim: ONE statement picks and marks up to n chunks: `queued` ones whose not_before
 *   has passed, and `leased` ones whose lease lapsed (takeover), of `in_progress`
 *   batches. It sets state `leased`, the owner, expires_at = now + ttl, attempts + 1,
 *   and epoch + 1, and returns the new epoch: the fencing token. On PostgreSQL the pick
 *   is `SELECT … FOR UPDATE SKIP LOCKED LIMIT n`, so concurrent claimers skip each
 *   other's rows instead of queueing on them, and the UPDATE re-checks claimability on
 *   the locked row; SQLite has one writer, so the statement is atomic. The pick is a
 *   `WITH … AS MATERIALIZED` in front of the UPDATE rather than `WHERE … IN (SELECT …)`:
 *   with the ranking joins, PostgreSQL 15 let `claim(1)` lease two chunks (seen in the
 *   contract test; most likely the LIMIT subquery rescanned inside a nested loop, the
 *   rescan skipping the row this statement had just updated). A materialized CTE is
 *   evaluated once (pg-boss fetches with a CTE in front of its UPDATE too).
 * - renew (heartbeat): `UPDATE … SET expires_at = now + ttl WHERE seq AND epoch = $held
 *   AND state = 'leased'`. The epoch is the fence, not the clock: a holder that lapsed
 *   but was not taken over may renew (nobody else ran the chunk); once a takeover bumped
 *   the epoch, renew, record and complete all change nothing and throw LeaseLostError.
 * - record (results.ts): each request's final result is inserted as it completes, keyed
 *   by (batch, line), by ONE statement `INSERT … SELECT … FROM batch_chunks WHERE seq AND
 *   epoch = $held AND state = 'leased' [FOR SHARE] ON CONFLICT DO NOTHING`: the fence and
 *   the write are one. FOR SHARE (PostgreSQL) makes a concurrent takeover skip the row
 *   and a concurrent complete wait until the insert commits. The primary key admits one
 *   result per line, whoever records it and however often.
 * - complete: after the chunk's part objects are durable, one transaction sets `state =
 *   'done' WHERE epoch = $held` (taking the row lock first), folds the chunk's results'
 *   counts and usage into the batch row, and deletes them.
 * - defer / release: the holder hands the chunk back (`queued`, not_before = now + delay;
 *   delay 0 for release), fenced by epoch. releaseOwned hands back every lease of one
 *   owner at once when a replica stops; a killed replica's leases lapse and are taken
 *   over by the next claim anywhere.
 *
 * Why no line is recorded twice, and why a crash re-sends only requests in flight: a
 * result row exists for a line iff that line's final answer was recorded, and the
 * primary key admits one row per line. A new holder (after a crash, takeover or
 * release) reads the chunk's recorded lines first and sends only the others, so the
 * only lines sent twice are those that were in flight when the previous holder
 * stopped: at most its in-flight bound. The chunk's watermark (state `done`) advances
 * only after every line has a row and the parts are written; a holder fenced off
 * before that leaves its rows for the next holder, which writes the parts from them.
 * A zombie whose epoch is stale can no longer insert (the fence), so rows are never
 * added to a chunk that is done and whose rows are gone. Part objects are not fenced by
 * the database, so their keys should carry the epoch that wrote them (the chunk keeps
 * its final epoch when done): a zombie's late upload then lands beside, not over, the
 * part that counts, and the reconciler removes it.
 *
 * Fairness (issue 11 item 4): not FIFO. Each claimable chunk gets a turn: its position
 * among its batch's claimable chunks plus that batch's live leases orders the chunks of
 * one project round-robin across its batches; that rank plus the project's live leases
 * orders projects round-robin, the project with the fewest chunks running first. Ties
 * go to the older batch. Ranking reads every claimable chunk (an index on state keeps
 * that to queued and leased rows); a per-project "last served" table is the next step
 * if that shows in profiles.
 */
import { sql, type Kysely } from 'kysely'
import { dbNowMs } from './db-clock.js'
import { claimChunks } from './claim.js'
import { heldBy, LeaseLostError, type ClaimedChunk, type Lease, type PlannedChunk } from './lease.js'
import { toNumber, type BatchDatabase, type Dialect } from './tables.js'

export type { ClaimedChunk, PlannedChunk } from './lease.js'

export interface ChunkCounts { queued: number, leased: number, done: number }

export interface CompletedChunk {
  /** Unix milliseconds, database clock. */
  doneAtMs: number
  outputLines: number
  errorLines: number
}

export interface BatchQueue {
  /** Inserts a batch's chunks, numbered 0… in order, in one transaction; returns how many were new. */
  plan (batchId: string, chunks: readonly PlannedChunk[]): Promise<number>
  /** Up to `limit` chunks, leased to `owner` for `ttlMs`; fair across projects and batches. */
  claim (owner: string, limit: number, ttlMs: number): Promise<ClaimedChunk[]>
  /** Extends the lease to now + ttlMs; returns the new expiry (ms). Throws LeaseLostError. */
  renew (lease: Lease, ttlMs: number): Promise<number>
  /**
   * Marks the chunk done, folds its recorded results' counts and usage into the batch
   * row and deletes them, in one transaction; call it once the chunk's part objects are
   * durable. Throws LeaseLostError.
   */
  complete (lease: Lease): Promise<CompletedChunk>
  /** Hands the chunk back, claimable again after delayMs (retry deferral). Throws LeaseLostError. */
  defer (lease: Lease, delayMs: number): Promise<void>
  /** Hands the chunk back, claimable at once. Throws LeaseLostError. */
  release (lease: Lease): Promise<void>
  /** Hands back every chunk `owner` holds (a stopping replica); returns how many. */
  releaseOwned (owner: string): Promise<number>
  counts (batchId: string): Promise<ChunkCounts>
}

/** The result columns a completed chunk sums into its batch row (usage, and the retries beside it). */
const FOLDED = ['usage_input_tokens', 'usage_cached_tokens', 'usage_output_tokens', 'usage_reasoning_tokens', 'usage_total_tokens', 'upstream_retries'] as const

/** Rows per INSERT while planning: 10 values each stays far below SQLite's 32766 variables. */
const PLAN_ROWS_PER_INSERT = 500

function positiveInteger (name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`)
}

function validatePlan (chunks: readonly PlannedChunk[]): void {
  let previous: PlannedChunk | undefined
  for (const [i, c] of chunks.entries()) {
    const ok = Number.isSafeInteger(c.byteStart) && Number.isSafeInteger(c.byteEnd) && c.byteStart >= 0 && c.byteEnd > c.byteStart &&
      Number.isSafeInteger(c.lineStart) && Number.isSafeInteger(c.lineEnd) && c.lineStart >= 1 && c.lineEnd > c.lineStart &&
      (previous === undefined || (c.byteStart >= previous.byteEnd && c.lineStart >= previous.lineEnd))
    if (!ok) throw new RangeError(`chunk ${i} is empty, out of order or overlaps the one before it`)
    previous = c
  }
}

export function createBatchQueue (db: Kysely<BatchDatabase>, dialect: Dialect): BatchQueue {
  const now = dbNowMs(dialect)

  async function handBack (lease: Lease, delayMs: number, action: string): Promise<void> {
    if (!Number.isSafeInteger(delayMs) || delayMs < 0) throw new RangeError(`delay must be a non-negative integer, got ${delayMs}`)
    const row = await db
      .updateTable('batch_chunks')
      .set((eb) => ({ state: 'queued', lease_owner: null, lease_expires_at_ms: null, not_before_ms: eb(now, '+', delayMs) }))
      .where(heldBy(lease))
      .returning('seq')
      .executeTakeFirst()
    if (row === undefined) throw new LeaseLostError(lease, action)
  }

  return {
    async plan (batchId, chunks) {
      validatePlan(chunks)
      return await db.transaction().execute(async (trx) => {
        // A batch is planned once. A second planner (one whose batch lease lapsed, or a
        // replica with another BATCH_CHUNK_LINES during a rolling deploy) would otherwise
        // add chunks whose byte ranges overlap the first plan's, and lines already run
        // would run again. The batch row's lock (PostgreSQL) orders two planners; SQLite
        // has one writer.
        if (dialect === 'postgres') await sql`select id from batches where id = ${batchId} for update`.execute(trx)
        const planned = await trx.selectFrom('batch_chunks').select('seq').where('batch_id', '=', batchId).limit(1).executeTakeFirst()
        if (planned !== undefined) return 0
        let inserted = 0
        for (let from = 0; from < chunks.length; from += PLAN_ROWS_PER_INSERT) {
          const rows = chunks.slice(from, from + PLAN_ROWS_PER_INSERT).map((c, i) => ({
            batch_id: batchId,
            seq: from + i,
            byte_start: c.byteStart,
            byte_end: c.byteEnd,
            line_start: c.lineStart,
            line_end: c.lineEnd
          }))
          const result = await trx.insertInto('batch_chunks').values(rows)
            .onConflict((oc) => oc.columns(['batch_id', 'seq']).doNothing()).executeTakeFirst()
          inserted += Number(result.numInsertedOrUpdatedRows ?? 0n)
        }
        return inserted
      })
    },

    async claim (owner, limit, ttlMs) {
      positiveInteger('claim limit', limit)
      positiveInteger('lease ttl', ttlMs)
      return await claimChunks(db, dialect, owner, limit, ttlMs)
    },

    async renew (lease, ttlMs) {
      positiveInteger('lease ttl', ttlMs)
      const row = await db
        .updateTable('batch_chunks')
        .set((eb) => ({ lease_expires_at_ms: eb(now, '+', ttlMs) }))
        .where(heldBy(lease))
        .returning('lease_expires_at_ms')
        .executeTakeFirst()
      if (row?.lease_expires_at_ms == null) throw new LeaseLostError(lease, 'renew')
      return toNumber(row.lease_expires_at_ms)
    },

    async complete (lease) {
      return await db.transaction().execute(async (trx) => {
        // The UPDATE first: it takes the chunk's row lock, so no record slips in after the
        // fold below (a record waits for the lock, then finds the chunk done).
        const row = await trx
          .updateTable('batch_chunks')
          .set({ state: 'done', lease_owner: null, lease_expires_at_ms: null, done_at_ms: now })
          .where(heldBy(lease))
          .returning('done_at_ms')
          .executeTakeFirst()
        if (row?.done_at_ms == null) throw new LeaseLostError(lease, 'complete')
        const totals = await trx.selectFrom('batch_results')
          .select((eb) => [
            eb.fn.sum<number | string | null>(sql`case when kind = 'output' then 1 else 0 end`).as('output'),
            eb.fn.sum<number | string | null>(sql`case when kind = 'output' then 0 else 1 end`).as('error'),
            ...FOLDED.map((u) => eb.fn.sum<number | string | null>(u).as(u))
          ])
          .where('batch_id', '=', lease.batchId).where('seq', '=', lease.seq)
          .executeTakeFirstOrThrow()
        const n = (v: number | string | null): number => (v === null ? 0 : toNumber(v))
        const outputLines = n(totals.output)
        const errorLines = n(totals.error)
        await trx.updateTable('batch_chunks').set({ output_lines: outputLines, error_lines: errorLines })
          .where('batch_id', '=', lease.batchId).where('seq', '=', lease.seq).execute()
        await trx.updateTable('batches')
          .set({
            request_completed: sql<number>`request_completed + ${outputLines}`,
            request_failed: sql<number>`request_failed + ${errorLines}`,
            ...Object.fromEntries(FOLDED.map((u) => [u, sql<number>`${sql.ref(u)} + ${n(totals[u])}`]))
          })
          .where('id', '=', lease.batchId)
          .execute()
        await trx.deleteFrom('batch_results').where('batch_id', '=', lease.batchId).where('seq', '=', lease.seq).execute()
        return { doneAtMs: toNumber(row.done_at_ms), outputLines, errorLines }
      })
    },

    async defer (lease, delayMs) {
      await handBack(lease, delayMs, 'defer')
    },

    async release (lease) {
      await handBack(lease, 0, 'release')
    },

    async releaseOwned (owner) {
      const result = await db
        .updateTable('batch_chunks')
        .set({ state: 'queued', lease_owner: null, lease_expires_at_ms: null, not_before_ms: 0 })
        .where('lease_owner', '=', owner)
        .where('state', '=', 'leased')
        .executeTakeFirst()
      return Number(result.numUpdatedRows)
    },

    async counts (batchId) {
      const rows = await db.selectFrom('batch_chunks')
        .select((eb) => ['state', eb.fn.countAll<number | string>().as('n')])
        .where('batch_id', '=', batchId)
        .groupBy('state')
        .execute()
      const counts: ChunkCounts = { queued: 0, leased: 0, done: 0 }
      for (const row of rows) {
        if (row.state === 'queued' || row.state === 'leased' || row.state === 'done') counts[row.state] = toNumber(row.n)
      }
      return counts
    }
  }
}
