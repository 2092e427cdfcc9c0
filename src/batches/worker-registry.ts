import { sql, type Kysely } from 'kysely'
import { dbNowMs } from './db-clock.js'
import { toNumber, type BatchDatabase, type Dialect } from './tables.js'

/**
 * The replicas running a batch worker (issue 11 item 2), so that an upstream's ceiling
 * (UPSTREAM_MAX_CONCURRENCY) holds for the whole deployment: each replica registers,
 * heartbeats on the database's clock, counts the live ones and takes an equal share,
 * floor(ceiling / live) (at least 1: a replica must be able to send). A stopping replica
 * deregisters at once; a killed one stops counting after `staleMs` without a heartbeat, and
 * its row is removed by the next heartbeat of anyone after ten times that. The shares
 * re-balance at every heartbeat. A newcomer sends nothing until the others have had a
 * heartbeat since it registered (the engine's join), so a join never lifts the sum past
 * the ceiling; a leaver stops sending before it deregisters, so neither does a leave.
 */
export interface WorkerRegistry {
  /** Registers or refreshes `owner`; returns the replicas alive now, this one included. */
  heartbeat: (owner: string) => Promise<number>
  leave: (owner: string) => Promise<void>
}

export function createWorkerRegistry (db: Kysely<BatchDatabase>, dialect: Dialect, staleMs: number): WorkerRegistry {
  const now = dbNowMs(dialect)
  return {
    async heartbeat (owner) {
      await db.insertInto('batch_workers')
        .values({ owner, started_at_ms: now, heartbeat_at_ms: now })
        .onConflict((oc) => oc.column('owner').doUpdateSet({ heartbeat_at_ms: now }))
        .execute()
      await db.deleteFrom('batch_workers').where(sql<boolean>`heartbeat_at_ms < ${now} - ${staleMs * 10}`).execute()
      const row = await db.selectFrom('batch_workers').select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where(sql<boolean>`heartbeat_at_ms >= ${now} - ${staleMs}`).executeTakeFirst()
      return Math.max(1, toNumber(row?.n ?? 1))
    },
    async leave (owner) {
      await db.deleteFrom('batch_workers').where('owner', '=', owner).execute()
    }
  }
}

/** This replica's share of a deployment-wide ceiling. */
export function shareOf (ceiling: number, replicas: number): number {
  return Math.max(1, Math.floor(ceiling / Math.max(1, replicas)))
}
