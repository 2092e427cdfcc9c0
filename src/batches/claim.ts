import { sql, type Kysely } from 'kysely'
import { dbNowMs } from './db-clock.js'
import type { ClaimedChunk } from './lease.js'
import { toNumber, type BatchDatabase, type Dialect } from './tables.js'

/**
 * The claim statement of the queue (see the protocol in queue.ts): picks up to `limit`
 * claimable chunks of in_progress batches in fair order and leases them to `owner` for
 * `ttlMs`, epoch + 1, in one statement. The pick is a MATERIALIZED CTE, evaluated once,
 * with FOR UPDATE SKIP LOCKED on PostgreSQL; the UPDATE re-checks claimability.
 */
export async function claimChunks (db: Kysely<BatchDatabase>, dialect: Dialect, owner: string, limit: number, ttlMs: number): Promise<ClaimedChunk[]> {
  const now = dbNowMs(dialect)
  // Queued and due, or leased and lapsed (a takeover).
  const claimable = (alias: string) => sql`((${sql.ref(`${alias}.state`)} = 'queued' and ${sql.ref(`${alias}.not_before_ms`)} <= ${now})
    or (${sql.ref(`${alias}.state`)} = 'leased' and ${sql.ref(`${alias}.lease_expires_at_ms`)} < ${now}))`
  const skipLocked = dialect === 'postgres' ? sql`for update of k skip locked` : sql``
  const live = sql`state = 'leased' and lease_expires_at_ms >= ${now}`
  const { rows } = await sql<{
    batch_id: string, seq: number, byte_start: number | string, byte_end: number | string,
    line_start: number | string, line_end: number | string, lease_epoch: number | string,
    lease_expires_at_ms: number | string, attempts: number
  }>`
    with picked as materialized (
      select k.batch_id, k.seq
      from batch_chunks k
      join (
        select r.batch_id, r.seq, r.created_at, r.b_turn,
          row_number() over (partition by r.project order by r.b_turn, r.created_at, r.batch_id) + r.p_live as p_turn
        from (
          select c.batch_id, c.seq, b.project, b.created_at,
            row_number() over (partition by c.batch_id order by c.seq) + coalesce(lb.n, 0) as b_turn,
            coalesce(lp.n, 0) as p_live
          from batch_chunks c
          join batches b on b.id = c.batch_id
          left join (select batch_id, count(*) as n from batch_chunks where ${live} group by batch_id) lb
            on lb.batch_id = c.batch_id
          left join (
            select b2.project, count(*) as n from batch_chunks c2 join batches b2 on b2.id = c2.batch_id
            where c2.state = 'leased' and c2.lease_expires_at_ms >= ${now} group by b2.project
          ) lp on lp.project = b.project
          where b.status = 'in_progress' and ${claimable('c')}
        ) r
      ) turn on turn.batch_id = k.batch_id and turn.seq = k.seq
      where ${claimable('k')}
      order by turn.p_turn, turn.b_turn, turn.created_at, turn.batch_id, turn.seq
      limit ${limit}
      ${skipLocked}
    )
    update batch_chunks
    set state = 'leased', lease_owner = ${owner}, lease_epoch = lease_epoch + 1,
        lease_expires_at_ms = ${now} + ${ttlMs}, attempts = attempts + 1
    where (batch_id, seq) in (select batch_id, seq from picked)
    and ${claimable('batch_chunks')}
    and exists (select 1 from batches b3 where b3.id = batch_chunks.batch_id and b3.status = 'in_progress')
    returning batch_id, seq, byte_start, byte_end, line_start, line_end, lease_epoch, lease_expires_at_ms, attempts
  `.execute(db)
  return rows.map((row) => ({
    batchId: row.batch_id,
    seq: toNumber(row.seq),
    epoch: toNumber(row.lease_epoch),
    owner,
    byteStart: toNumber(row.byte_start),
    byteEnd: toNumber(row.byte_end),
    lineStart: toNumber(row.line_start),
    lineEnd: toNumber(row.line_end),
    leaseExpiresAtMs: toNumber(row.lease_expires_at_ms),
    attempts: toNumber(row.attempts)
  }))
}
