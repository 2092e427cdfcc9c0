import { mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import BetterSqlite3 from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import type { FileStore } from './file-store.js'
import { createKyselyFileStore, type Database } from './kysely-file-store.js'
import { cachingStatements } from './statement-cache.js'

export interface SqliteFileStoreOptions {
  /** Path of the database file (its directory is created), or ':memory:'. */
  filename: string
  /** How long a write waits for another connection's lock before SQLITE_BUSY (default 5 s). */
  busyTimeoutMs?: number
  /**
   * 'FULL' (the default) makes every commit durable before it returns. 'NORMAL' exists
   * only for the bench's baseline (what durability costs); no setting reaches it.
   */
  synchronous?: 'FULL' | 'NORMAL'
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
    // WAL lets readers run beside the single writer.
    sqlite.pragma('journal_mode = WAL')
    // A second process on the same file (the CLI, a migration) waits instead of
    // failing at once with SQLITE_BUSY.
    sqlite.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`)
    // With WAL, NORMAL is crash-safe but a power cut may roll back the last commits:
    // files already answered 200. FULL syncs the WAL at every commit (issue 9, item 5).
    // https://www.sqlite.org/pragma.html#pragma_synchronous
    sqlite.pragma(`synchronous = ${opts.synchronous === 'NORMAL' ? 'NORMAL' : 'FULL'}`)
    // Off by default in SQLite for historical reasons; on so future references hold.
    sqlite.pragma('foreign_keys = ON')
  } catch (err) {
    sqlite.close()
    throw err
  }

  // Destroying the Kysely instance closes the better-sqlite3 handle.
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: cachingStatements(sqlite) }) })
  if (inMemory) return createKyselyFileStore(db, { dialect: 'sqlite' })
  // The retrieve (every GET, download and batch create) reads on a connection of its own:
  // opened read-only after the writer set WAL, it sees every committed row and never one
  // of a transaction still open on the writer, and it runs without Kysely's executor.
  let reader: BetterSqlite3.Database | undefined
  return createKyselyFileStore(db, {
    dialect: 'sqlite',
    prepareRead: (sql) => {
      reader ??= openReader(opts.filename, opts.busyTimeoutMs)
      return reader.prepare<unknown[]>(sql)
    },
    onClose: async () => { reader?.close() }
  })
}

function openReader (filename: string, busyTimeoutMs: number | undefined): BetterSqlite3.Database {
  const reader = new BetterSqlite3(filename, { readonly: true, fileMustExist: true })
  reader.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs ?? 5000))}`)
  return reader
}
