import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import type { FileStore } from './file-store.js'
import { createKyselyFileStore, type Database } from './kysely-file-store.js'
import { migrateToLatest } from './migrations.js'

export interface PostgresFileStoreOptions {
  /** `postgres://user:password@host:port/database?sslmode=…`; a secret: never logged or put in an error. */
  connectionString: string
  /** Connections per process (default 10): replicas × poolMax must stay under the server's max_connections. */
  poolMax?: number
  /** Longest a query may run before the server cancels it (default 30 s). */
  statementTimeoutMs?: number
  /** Longest to wait for a connection, from the pool or a new one (default 10 s). */
  connectionTimeoutMs?: number
  /**
   * Told about errors of idle pooled connections (a server restart or failover closes
   * them). The pool has already dropped the connection; the next query opens a new one.
   */
  onPoolError?: (err: Error) => void
}

const DEFAULT_POOL_MAX = 10
/** pg_advisory_lock key of reconciliation: one replica at a time (any constant unique to this app). */
const RECONCILE_LOCK_KEY = 7_331_905_117

/**
 * The connection string without its password, for messages: `postgres://user@host:port/db`.
 * Throws, without the string, when it is not a PostgreSQL URL.
 */
export function describeConnectionString (connectionString: string): string {
  let url: URL
  try {
    url = new URL(connectionString)
  } catch {
    // URL's own TypeError carries the whole input (`err.input`), password included.
    throw new Error('DATABASE_URL is not a valid URL (expected postgres://user:password@host:port/database)')
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new Error(`DATABASE_URL must start with postgres:// or postgresql://, not ${url.protocol}//`)
  }
  url.password = ''
  url.search = ''
  return url.toString()
}

/**
 * The metadata store for deployments with several replicas: PostgreSQL through Kysely,
 * the same queries as SQLite (kysely-file-store.ts). Call `migrate()` before use.
 */
export async function createPostgresFileStore (opts: PostgresFileStoreOptions): Promise<FileStore> {
  const target = describeConnectionString(opts.connectionString)
  const poolMax = opts.poolMax ?? DEFAULT_POOL_MAX
  if (!Number.isSafeInteger(poolMax) || poolMax < 1) {
    throw new RangeError(`PostgreSQL pool size must be a positive integer, got ${poolMax}`)
  }
  const base: pg.PoolConfig = {
    connectionString: opts.connectionString,
    application_name: 'files-api',
    connectionTimeoutMillis: opts.connectionTimeoutMs ?? 10_000,
    idleTimeoutMillis: 30_000,
    // A half-open TCP connection (a vanished server, a dropped NAT entry) is noticed
    // instead of hanging a request until the OS gives up.
    keepAlive: true
  }
  const onPoolError = opts.onPoolError ?? (() => {})
  // An idle client's error is emitted on the pool; with no listener it would crash the process.
  // A checked-out client whose connection dies between the statements of a transaction
  // (insertNext's) emits 'error' with no listener of the pool's: the statement in flight
  // fails anyway and the pool drops the unusable client on release, but an unheard
  // 'error' event would crash the process.
  const newPool = (config: pg.PoolConfig): pg.Pool => new pg.Pool(config)
    .on('error', onPoolError)
    .on('connect', (client) => { client.on('error', () => {}) })

  const pool = newPool({
    ...base,
    max: poolMax,
    statement_timeout: opts.statementTimeoutMs ?? 30_000,
    // statement_timeout is enforced by the server; a server that stalls without closing
    // the connection would hang a request until TCP keepalive gives up. This one is
    // enforced by the client, a little later than the server's own.
    query_timeout: (opts.statementTimeoutMs ?? 30_000) + 5_000,
    // A transaction left open by a bug would hold its row locks forever.
    idle_in_transaction_session_timeout: 60_000
  })
  // Destroying the Kysely instance ends the pool.
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
  const store = createKyselyFileStore(db, { dialect: 'postgres' })

  return {
    ...store,

    /**
     * Safe when replicas start together: Kysely's Migrator takes a session-level
     * `pg_advisory_lock` (PostgresAdapter.acquireMigrationLock, with a one-hour
     * lock_timeout) around the whole run, and each migration runs in a transaction, so
     * the second replica waits, then finds everything applied. It runs on a connection
     * of its own without statement_timeout: an index build may outlast the 30 s meant
     * for requests, and so may the wait for another replica's migration.
     */
    async migrate () {
      const migrationDb = new Kysely<Database>({
        dialect: new PostgresDialect({ pool: newPool({ ...base, max: 1 }) })
      })
      try {
        await migrateToLatest(migrationDb)
      } catch (err) {
        throw withTarget('migration failed', target, err)
      } finally {
        await migrationDb.destroy()
      }
    },

    /**
     * A session lock on a connection of its own, held for the whole run and released
     * when it ends (or when the connection dies with the process). A replica that finds
     * it held skips its run: the holder is repairing the same storage.
     */
    async withReconcileLock (fn) {
      const client = await pool.connect()
      let broken: Error | undefined
      try {
        const res = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1) as locked', [RECONCILE_LOCK_KEY])
        if (res.rows[0]?.locked !== true) return null
        try {
          return { value: await fn() }
        } finally {
          await client.query('select pg_advisory_unlock($1)', [RECONCILE_LOCK_KEY]).catch((err: unknown) => {
            // A connection that cannot unlock must not go back to the pool still holding the lock.
            broken = err instanceof Error ? err : new Error(String(err))
          })
        }
      } finally {
        client.release(broken)
      }
    },

    async check () {
      try {
        await store.check()
      } catch (err) {
        throw withTarget('is not usable', target, err)
      }
    }
  }
}

// pg's messages name the user, host and database at most, never the password.
function withTarget (what: string, target: string, err: unknown): Error {
  const detail = err instanceof Error ? err.message : String(err)
  return new Error(`PostgreSQL at ${target} ${what}: ${detail}`, { cause: err })
}
