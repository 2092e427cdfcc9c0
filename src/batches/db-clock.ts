import { sql, type RawBuilder } from 'kysely'
import type { Dialect } from './tables.js'

/**
 * The database's clock, never the replica's: leases are compared across replicas
 * whose clocks may disagree by seconds, and the database is the one clock they share.
 *
 * PostgreSQL's now() is the start of the transaction; every statement here runs in a
 * transaction of its own or one that lasts milliseconds. SQLite evaluates 'now' once
 * per statement (https://www.sqlite.org/lang_datefunc.html), so one statement sees
 * one instant on both.
 */
export function dbNowMs (dialect: Dialect): RawBuilder<number> {
  return dialect === 'postgres'
    ? sql<number>`(floor(extract(epoch from now()) * 1000)::bigint)`
    : sql<number>`(cast(unixepoch('subsec') * 1000 as integer))`
}

/** Unix seconds of the database's clock, for OpenAI's *_at fields. */
export function dbNowSeconds (dialect: Dialect): RawBuilder<number> {
  return dialect === 'postgres'
    ? sql<number>`(floor(extract(epoch from now()))::bigint)`
    : sql<number>`(unixepoch())`
}
