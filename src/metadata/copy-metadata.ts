import type { ExpressionBuilder, Expression, Kysely, SqlBool } from 'kysely'

/** Any table as rows of plain columns: the copy reads and writes columns without knowing them. */
export type AnyDatabase = Record<string, Record<string, unknown>>

export interface CopiedTable {
  name: string
  /** The primary key's columns: pages are keyset-paged on them, rows matched by them. */
  key: readonly string[]
}

/**
 * Every table a deployment's metadata lives in. A new table (issue 9's `deployment`
 * identity, say) is one more line here; test/cli/copy-metadata.test.ts fails while a
 * migrated table is missing from the list.
 */
export const COPIED_TABLES: readonly CopiedTable[] = [
  { name: 'files', key: ['id'] },
  // The deployment identity goes with the rows: without it the new database would refuse
  // to start against the existing store.
  { name: 'files_api_deployment', key: ['singleton'] },
  // Parents before children: batch_chunks references batches.
  { name: 'batches', key: ['id'] },
  { name: 'batch_chunks', key: ['batch_id', 'seq'] },
  { name: 'batch_results', key: ['batch_id', 'line'] },
  // upload_parts references uploads. A pending upload copied keeps its parts' objects.
  { name: 'uploads', key: ['id'] },
  { name: 'upload_parts', key: ['id'] }
]

/**
 * Tables that are not a deployment's data and stay behind: `batch_workers` holds the
 * heartbeats of the replicas running on the source database, which mean nothing in
 * another one (the replicas register there when they start on it).
 */
export const UNCOPIED_TABLES: readonly string[] = ['batch_workers']

export interface TableCopyResult {
  table: string
  sourceRows: number
  copied: number
  alreadyPresent: number
  /** Rows of the same key whose content differs (at most MAX_LISTED listed, all counted). */
  conflicts: number
  conflictKeys: string[]
  /** Rows of the target that the source does not hold: another deployment's. */
  foreignRows: number
}

export interface CopyOptions {
  source: Kysely<AnyDatabase>
  target: Kysely<AnyDatabase>
  tables?: readonly CopiedTable[]
  pageSize?: number
  /** Check only: count what would be copied, write nothing. */
  dryRun?: boolean
}

const MAX_LISTED = 20

/**
 * The same value on both sides: PostgreSQL returns int8 as a string, SQLite as a number,
 * so every value is compared as its text (JSON columns are copied verbatim as text).
 */
function sameRow (a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  return Object.keys(a).every((column) => {
    const x = a[column]
    const y = b[column]
    return x === null || x === undefined ? y === null || y === undefined : y !== null && y !== undefined && String(x) === String(y)
  })
}

type Row = Record<string, unknown>
type Where = ExpressionBuilder<AnyDatabase, string>

/** A row's key as one string, the same for SQLite's numbers and PostgreSQL's int8 strings. */
function keyOf (table: CopiedTable, row: Row): string {
  return JSON.stringify(table.key.map((column) => String(row[column])))
}

/** Rows strictly after `last` in key order: (k1 > a) or (k1 = a and k2 > b) … */
function afterKey (eb: Where, table: CopiedTable, last: Row): Expression<SqlBool> {
  return eb.or(table.key.map((column, i) => eb.and([
    ...table.key.slice(0, i).map((before) => eb(before, '=', last[before])),
    eb(column, '>', last[column])
  ])))
}

/** Source pages in key order, one page in memory at a time. */
async function * sourcePages (db: Kysely<AnyDatabase>, table: CopiedTable, pageSize: number): AsyncGenerator<Row[]> {
  let last: Row | undefined
  for (;;) {
    let select = db.selectFrom(table.name).selectAll()
    const after = last
    if (after !== undefined) select = select.where((eb) => afterKey(eb, table, after))
    for (const column of table.key) select = select.orderBy(column)
    const rows = await select.limit(pageSize).execute()
    if (rows.length === 0) return
    yield rows
    last = rows[rows.length - 1]
  }
}

async function targetRows (db: Kysely<AnyDatabase>, table: CopiedTable, page: Row[]): Promise<Map<string, Row>> {
  const rows = await db.selectFrom(table.name).selectAll()
    .where((eb) => eb.or(page.map((row) => eb.and(table.key.map((column) => eb(column, '=', row[column]))))))
    .execute()
  return new Map(rows.map((row) => [keyOf(table, row), row]))
}

function concurrentWrite (table: string): Error {
  return new Error(`rows of ${table} appeared in the target during the copy: is a service already writing to it? Stop it and run the copy again`)
}

/**
 * Copies every row of `tables` from source to target, or nothing when the target holds
 * anything else. A first pass writes nothing: it counts rows already present with the same
 * content, conflicts (same key, other content) and the target's rows the source lacks; any
 * conflict or foreign row stops the run before its first write, so a target of another
 * deployment is never mixed with this one. The second pass inserts the missing rows, a page
 * per transaction; a row that appeared meanwhile rolls that page back and fails the run.
 */
export async function copyMetadata (opts: CopyOptions): Promise<TableCopyResult[]> {
  const tables = opts.tables ?? COPIED_TABLES
  const pageSize = opts.pageSize ?? 500
  const results: TableCopyResult[] = []
  for (const table of tables) {
    const result: TableCopyResult = { table: table.name, sourceRows: 0, copied: 0, alreadyPresent: 0, conflicts: 0, conflictKeys: [], foreignRows: 0 }
    for await (const page of sourcePages(opts.source, table, pageSize)) {
      const present = await targetRows(opts.target, table, page)
      result.sourceRows += page.length
      for (const row of page) {
        const existing = present.get(keyOf(table, row))
        if (existing === undefined) continue
        if (sameRow(row, existing)) result.alreadyPresent++
        else if (++result.conflicts <= MAX_LISTED) result.conflictKeys.push(table.key.length === 1 ? String(row[table.key[0] ?? '']) : keyOf(table, row))
      }
    }
    const counted = await opts.target.selectFrom(table.name).select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow()
    result.foreignRows = Number(counted.n) - result.alreadyPresent - result.conflicts
    results.push(result)
  }
  if (opts.dryRun === true || results.some((r) => r.conflicts > 0 || r.foreignRows > 0)) return results

  for (const [index, table] of tables.entries()) {
    const result = results[index]
    if (result === undefined) continue
    for await (const page of sourcePages(opts.source, table, pageSize)) {
      await opts.target.transaction().execute(async (trx) => {
        const present = await targetRows(trx, table, page)
        const missing = page.filter((row) => !present.has(keyOf(table, row)))
        if (missing.length === 0) return
        const inserted = await trx.insertInto(table.name).values(missing).onConflict((oc) => oc.columns([...table.key]).doNothing()).returning([...table.key]).execute()
        if (inserted.length !== missing.length) throw concurrentWrite(table.name)
        result.copied += inserted.length
      })
    }
  }
  return results
}
