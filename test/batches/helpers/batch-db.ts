import { join } from 'node:path'
import BetterSqlite3 from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect, sql, type KyselyConfig } from 'kysely'
import pg from 'pg'
import type { Test } from 'tap'
import { dbNowMs, dbNowSeconds } from '../../../src/batches/db-clock.js'
import type { BatchDatabase, Dialect } from '../../../src/batches/tables.js'
import { migrateToLatest } from '../../../src/metadata/migrations.js'

export interface BatchDb {
  db: Kysely<BatchDatabase>
  dialect: Dialect
  /** Another connection pool on the same database (PostgreSQL), or the same instance (SQLite: one writer). */
  second: Kysely<BatchDatabase>
}

export type MakeBatchDb = (t: Test) => Promise<BatchDb>

/** A migrated SQLite file in the test's directory, with the pragmas of the SQLite file store; `log` is Kysely's. */
export async function sqliteBatchDb (t: Test, opts: { log?: KyselyConfig['log'] } = {}): Promise<BatchDb> {
  const sqlite = new BetterSqlite3(join(t.testdir(), 'batches.db'))
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('foreign_keys = ON')
  const db = new Kysely<BatchDatabase>({ dialect: new SqliteDialect({ database: sqlite }), ...(opts.log === undefined ? {} : { log: opts.log }) })
  t.teardown(() => db.destroy())
  await migrateToLatest(db)
  return { db, dialect: 'sqlite', second: db }
}

/** Two pools, as two replicas have, on one migrated database at `url`. */
export async function postgresBatchDb (t: Test, url: string): Promise<BatchDb> {
  const open = (): Kysely<BatchDatabase> => {
    const db = new Kysely<BatchDatabase>({
      // freshDatabase's teardown drops the database WITH (FORCE), which may end idle pooled
      // connections before the pool is destroyed; unheard, that error would crash the test.
      dialect: new PostgresDialect({
        pool: new pg.Pool({ connectionString: url, max: 5, application_name: 'files-api-tests' }).on('error', () => {})
      })
    })
    t.teardown(() => db.destroy())
    return db
  }
  const db = open()
  await migrateToLatest(db)
  return { db, dialect: 'postgres', second: open() }
}

export async function databaseNowMs (b: BatchDb): Promise<number> {
  const { rows } = await sql<{ ms: number | string }>`select ${dbNowMs(b.dialect)} as ms`.execute(b.db)
  return Number(rows[0]?.ms)
}

export async function databaseNowSeconds (b: BatchDb): Promise<number> {
  const { rows } = await sql<{ s: number | string }>`select ${dbNowSeconds(b.dialect)} as s`.execute(b.db)
  return Number(rows[0]?.s)
}

/** Waits until the database's clock has passed `ms`, polling it rather than trusting this process's clock. */
export async function untilDatabasePasses (b: BatchDb, ms: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await databaseNowMs(b) > ms) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`the database clock never passed ${ms}`)
}
