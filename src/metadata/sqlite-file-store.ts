import { mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import BetterSqlite3 from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import type { FileStore } from './file-store.js'
import { createKyselyFileStore, type Database } from './kysely-file-store.js'

export interface SqliteFileStoreOptions {
  /** Path of the database file (its directory is created), or ':memory:'. */
  filename: string
  /** How long a write waits for another connection's lock before SQLITE_BUSY (default 5 s). */
  busyTimeoutMs?: number
}

/**
 * The embedded default metadata store. Call `migrate()` before use.
 */
export async function createSqliteFileStore (opts: SqliteFileStoreOptions): Promise<FileStore> {
  const inMemory = opts.filename === ':memory:' || opts.filename === ''
  if (!inMemory) {
    await mkdir(dirname(opts.filename), { recursive: true })
  }

  const sqlite = new BetterSqlite3(opts.filename)
  try {
    // WAL lets readers run beside the single writer, and with WAL `synchronous =
    // NORMAL` is still crash-safe (only the last commits may roll back on power loss).
    // https://www.sqlite.org/wal.html, https://www.sqlite.org/pragma.html#pragma_synchronous
    sqlite.pragma('journal_mode = WAL')
    // A second process on the same file (the CLI, a migration) waits instead of
    // failing at once with SQLITE_BUSY.
    sqlite.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`)
    sqlite.pragma('synchronous = NORMAL')
    // Off by default in SQLite for historical reasons; on so future references hold.
    sqlite.pragma('foreign_keys = ON')
  } catch (err) {
    sqlite.close()
    throw err
  }

  // Destroying the Kysely instance closes the better-sqlite3 handle.
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) })
  return createKyselyFileStore(db, { dialect: 'sqlite' })
}
