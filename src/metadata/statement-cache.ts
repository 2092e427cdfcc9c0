import type { SqliteDatabase, SqliteStatement } from 'kysely'

/** The statements better-sqlite3 keeps here: far more than the store's distinct queries. */
export const DEFAULT_STATEMENT_CACHE_SIZE = 200

interface BusyAwareStatement extends SqliteStatement {
  /** better-sqlite3: true while an iterate() over this statement is open. */
  readonly busy?: boolean
}

interface PreparingDatabase extends SqliteDatabase {
  prepare: (sql: string) => BusyAwareStatement
}

/**
 * Kysely's SQLite driver prepares every query anew; preparing is most of a metadata
 * read's cost in SQLite (a retrieve ran at 0.2× /health). The store's queries are few
 * and their text repeats with parameters bound apart, so prepared statements are kept
 * by SQL text, least recently used evicted. A statement still iterating (a streamed
 * query) cannot run again, so it is prepared afresh. Schema changes need nothing here:
 * SQLite re-prepares a statement whose schema changed.
 */
export function cachingStatements (database: PreparingDatabase, size = DEFAULT_STATEMENT_CACHE_SIZE): SqliteDatabase {
  const cache = new Map<string, BusyAwareStatement>()
  return {
    close () {
      cache.clear()
      database.close()
    },
    prepare (sql) {
      const cached = cache.get(sql)
      if (cached !== undefined && cached.busy !== true) {
        // Re-inserted: a Map iterates in insertion order, so the first key is the least recently used.
        cache.delete(sql)
        cache.set(sql, cached)
        return cached
      }
      const statement = database.prepare(sql)
      if (cached === undefined) {
        cache.set(sql, statement)
        if (cache.size > size) cache.delete(cache.keys().next().value as string)
      }
      return statement
    }
  }
}
