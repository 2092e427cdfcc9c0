import { existsSync } from 'node:fs'
import { parseArgs } from 'node:util'
import BetterSqlite3 from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely'
import pg from 'pg'
import { ConfigError, loadConfig } from '../config.js'
import { copyMetadata, type AnyDatabase, type TableCopyResult } from '../metadata/copy-metadata.js'
import { sqlitePath } from '../metadata/create-file-store.js'
import { migrateToLatest } from '../metadata/migrations.js'
import { createPostgresFileStore, describeConnectionString } from '../metadata/postgres-file-store.js'
import { EXIT_INVALID, EXIT_USAGE, type CliIo } from './validate.js'

export const COPY_METADATA_USAGE = `Usage: files-api copy-metadata --to postgres://USER@HOST:PORT/DB [--dry-run] [--json]

Copies the metadata of an embedded-default deployment (the SQLite database at
SQLITE_PATH, default DATA_DIR/files.db, read from the server's settings) into
PostgreSQL, so the deployment can move to DATABASE_URL and replicas and keep
every file. Stop the service first. The target's schema is migrated, then every
row is copied (expired ones too: their objects are still in storage), in pages.

Safe to run again: rows already present with the same content are skipped. When
the target holds a row of the same id with other content, or rows the source
does not have (another deployment's), nothing at all is written.

Options:
  --to URL     the PostgreSQL database; leave the password out and set
               PGPASSWORD to keep it out of the process list. Never printed.
  --dry-run    check and count, write nothing (the schema is still migrated)
  --json       print the result as one JSON object
  -h, --help   show this help

Exit status: 0 copied (or everything already present), 1 the target holds other
content (conflicts or foreign rows; nothing written), 2 usage error, bad setting,
missing source or unreachable database.
`

/** `files-api copy-metadata ARGS`; resolves to the exit status. */
export async function runCopyMetadata (argv: string[], io: CliIo): Promise<number> {
  let values: { to?: string, 'dry-run'?: boolean, json?: boolean, help?: boolean }
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { to: { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true
    }))
  } catch (error) {
    // parseArgs quotes the argument it did not like, which may be the URL: not shown.
    return failure(io, `bad arguments (${error instanceof Error && 'code' in error ? String(error.code) : 'unknown'}).\nRun 'files-api copy-metadata --help' for usage.`)
  }
  if (values.help === true) {
    io.stdout.write(COPY_METADATA_USAGE)
    return 0
  }
  if (values.to === undefined) return failure(io, '--to postgres://… is required.')
  let target: string
  try {
    target = describeConnectionString(values.to)
  } catch {
    return failure(io, '--to must be a postgres:// or postgresql:// URL.')
  }
  let config
  try {
    config = loadConfig(io.env)
  } catch (error) {
    if (error instanceof ConfigError) return failure(io, error.message)
    throw error
  }
  if (config.DATABASE_URL !== undefined) {
    return failure(io, 'DATABASE_URL is set: the source is the embedded SQLite database, so run this with the settings of the SQLite deployment (DATA_DIR, SQLITE_PATH).')
  }
  const source = sqlitePath(config)
  // A wrong DATA_DIR must not copy an empty, freshly created database.
  if (!existsSync(source)) return failure(io, `no SQLite database at ${source}: set DATA_DIR or SQLITE_PATH as the deployment has them.`)

  const sqlite = new BetterSqlite3(source, { fileMustExist: true })
  sqlite.pragma('busy_timeout = 5000')
  const sourceDb = new Kysely<AnyDatabase>({ dialect: new SqliteDialect({ database: sqlite }) })
  const targetDb = new Kysely<AnyDatabase>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: values.to, max: 2, application_name: 'files-api copy-metadata' }).on('error', () => {}) })
  })
  try {
    // Both schemas at this version's latest, as the server's start would leave them.
    await migrateToLatest(sourceDb)
    const migrator = await createPostgresFileStore({ connectionString: values.to, poolMax: 1 })
    try {
      await migrator.migrate()
    } finally {
      await migrator.close()
    }
    const results = await copyMetadata({ source: sourceDb, target: targetDb, dryRun: values['dry-run'] === true })
    const refused = results.some((r) => r.conflicts > 0 || r.foreignRows > 0)
    if (values.json === true) {
      io.stdout.write(`${JSON.stringify({ source, target, dry_run: values['dry-run'] === true, refused, tables: results })}\n`)
    } else {
      io.stdout.write(formatSummary(source, target, results, values['dry-run'] === true, refused))
    }
    return refused ? EXIT_INVALID : 0
  } catch (error) {
    // pg's messages name the user, host and database at most, never the password.
    return failure(io, `copy to ${target} failed: ${error instanceof Error ? error.message : String(error)}`)
  } finally {
    await targetDb.destroy()
    await sourceDb.destroy()
  }
}

function formatSummary (source: string, target: string, results: TableCopyResult[], dryRun: boolean, refused: boolean): string {
  const out = [`source: SQLite ${source}`, `target: PostgreSQL ${target}`]
  for (const r of results) {
    const copied = dryRun || refused ? `to copy ${r.sourceRows - r.alreadyPresent - r.conflicts}` : `copied ${r.copied}`
    out.push(`${r.table}: ${r.sourceRows} rows in the source; ${copied}, already present ${r.alreadyPresent}, conflicts ${r.conflicts}, target rows not in the source ${r.foreignRows}`)
    if (r.conflicts > 0) out.push(`  conflicting ${r.table} rows (same key, other content): ${r.conflictKeys.join(', ')}${r.conflicts > r.conflictKeys.length ? ', …' : ''}`)
  }
  if (results.every((r) => r.sourceRows === 0)) out.push('note: the source holds no rows: are DATA_DIR and SQLITE_PATH those of the deployment?')
  if (refused) out.push('refused: the target holds other content; nothing was written. Point --to at an empty database, or at this deployment\'s copy.')
  else if (dryRun) out.push('dry run: nothing was written.')
  return out.join('\n') + '\n'
}

function failure (io: CliIo, message: string): number {
  io.stderr.write(`files-api copy-metadata: ${message}\n`)
  return EXIT_USAGE
}
