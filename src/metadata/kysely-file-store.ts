import { sql, type ColumnType, type CompiledQuery, type Insertable, type Kysely, type Selectable, type Transaction } from 'kysely'
import type { BatchError } from '../../schemas/batch-error.js'
import type { FilePurpose } from '../../schemas/files.js'
import { nextFileId } from '../ids.js'
import type { FileRecord, FileStore, ListFilesPage, ListFilesQuery, NewFileRecord } from './file-store.js'
import { toNumber, type BatchDatabase, type Dialect, type Int8 } from '../batches/tables.js'
import { bindsOnly } from './compiled-once.js'
import type { UploadDatabase } from '../uploads/upload-store.js'
import { migrateToLatest } from './migrations.js'

/** The `files` table as created by migration 0001_files. */
export interface FilesTable {
  id: string
  project: string
  filename: string
  purpose: string
  bytes: Int8
  created_at: Int8
  expires_at: Int8 | null
  request_count: number | null
  sha256: string
  storage_key: string
  /** JSON array of BatchError; defaults to '[]'. */
  warnings: ColumnType<string, string | undefined, string>
}

/** Migration 0004_deployment: one row, singleton = 'deployment'. */
export interface DeploymentTable {
  singleton: string
  id: string
  created_at: Int8
}

export interface Database {
  files: FilesTable
  files_api_deployment: DeploymentTable
}

type FileRow = Selectable<FilesTable>
type NewFileRow = Insertable<FilesTable>

export interface KyselyFileStoreOptions {
  /** Reported as FileStore.dialect, e.g. 'sqlite' or 'postgres'. */
  dialect: Dialect
  /** Releases what the caller opened beside Kysely; runs after the Kysely instance is destroyed. */
  onClose?: () => Promise<void>
  /**
   * Prepares `sql` on a connection of its own that reads only committed rows (SQLite: a
   * second, read-only connection in WAL mode), for the retrieve: run synchronously, it
   * skips Kysely's executor and its connection queue. Absent, the retrieve goes through
   * Kysely like every other query.
   */
  prepareRead?: (sql: string) => { get: (...parameters: unknown[]) => unknown }
}

function rowToRecord (row: FileRow): FileRecord {
  return {
    id: row.id,
    project: row.project,
    filename: row.filename,
    // Only insert() writes this column, always from a FileRecord's Purpose.
    purpose: row.purpose as FilePurpose,
    bytes: toNumber(row.bytes),
    createdAt: toNumber(row.created_at),
    expiresAt: row.expires_at === null ? null : toNumber(row.expires_at),
    requestCount: row.request_count === null ? null : toNumber(row.request_count),
    sha256: row.sha256,
    storageKey: row.storage_key,
    warnings: JSON.parse(row.warnings) as BatchError[]
  }
}

function recordToRow (record: FileRecord): NewFileRow {
  return {
    id: record.id,
    project: record.project,
    filename: record.filename,
    purpose: record.purpose,
    bytes: record.bytes,
    created_at: record.createdAt,
    expires_at: record.expiresAt,
    request_count: record.requestCount,
    sha256: record.sha256,
    storage_key: record.storageKey,
    warnings: JSON.stringify(record.warnings)
  }
}

/**
 * Serialises insertNext across every replica sharing the database (an arbitrary
 * constant, unlike Kysely's migration lock 3853314791062309107).
 */
export const COMMIT_ORDER_LOCK_ID = '7307716472330990909'

async function greatestId (db: Kysely<Database> | Transaction<Database>): Promise<string | undefined> {
  const row = await db.selectFrom('files').select((eb) => eb.fn.max('id').as('last')).executeTakeFirst()
  return row?.last ?? undefined
}

/**
 * PostgreSQL: the transaction-scoped advisory lock is held until the commit has made the
 * row visible (locks are released after the commit), so the next holder's max(id) sees
 * it and mints a greater id, and no smaller id can become visible after a greater one.
 * The max is read in a statement of its own, after the lock: under READ COMMITTED a
 * statement's snapshot is taken when it starts, and one taken before the lock was
 * granted could miss the previous holder's row. The time is the database's clock, the
 * one clock every replica shares.
 */
async function insertNextPostgres (db: Kysely<Database>, record: NewFileRecord): Promise<FileRecord> {
  return await db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${COMMIT_ORDER_LOCK_ID}::bigint)`.execute(trx)
    const last = await greatestId(trx)
    const clock = await sql<{ now_ms: string }>`select (extract(epoch from clock_timestamp()) * 1000)::bigint as now_ms`.execute(trx)
    const file: FileRecord = { ...record, id: nextFileId(last, Number(clock.rows[0]?.now_ms ?? Date.now())) }
    await trx.insertInto('files').values(recordToRow(file)).execute()
    return file
  })
}

/**
 * SQLite: one writer at a time anyway; BEGIN IMMEDIATE takes the write lock before the
 * max is read, so another process on the same file (the CLI) cannot interleave, and the
 * pinned connection keeps this process's other queries out until the commit.
 */
async function insertNextSqlite (db: Kysely<Database>, record: NewFileRecord): Promise<FileRecord> {
  return await db.connection().execute(async (conn) => {
    await sql`begin immediate`.execute(conn)
    try {
      const file: FileRecord = { ...record, id: nextFileId(await greatestId(conn), Date.now()) }
      await conn.insertInto('files').values(recordToRow(file)).execute()
      await sql`commit`.execute(conn)
      return file
    } catch (error) {
      await sql`rollback`.execute(conn).catch(() => {})
      throw error
    }
  })
}

/**
 * The retrieve is the hottest query (every GET, download and batch create): Kysely builds
 * and compiles it anew on each call, a third of a retrieve's time in the profile. It is
 * compiled once with placeholders (bindsOnly), and each call binds its own values.
 */
function compileGetQuery (db: Kysely<Database>): CompiledQuery<FileRow> {
  const placeholders = ['\u0000project', '\u0000id', -1]
  const [project, id, now] = placeholders as [string, string, number]
  const compiled = db
    .selectFrom('files')
    .selectAll()
    .where('project', '=', project)
    .where('id', '=', id)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .compile()
  return bindsOnly(compiled, placeholders, 'the compiled retrieve query')
}

/**
 * The dialect-independent FileStore: every query here must run unchanged on SQLite
 * (≥ 3.35, for RETURNING) and PostgreSQL; the SQLite and PostgreSQL stores only
 * build the Kysely instance.
 */
export function createKyselyFileStore (db: Kysely<Database>, opts: KyselyFileStoreOptions): FileStore {
  let closing: Promise<void> | undefined
  let reconciling = false
  // Bytewise on both: PostgreSQL's default collation sorts `files/p-q` after `files/p/`.
  const storageKey = opts.dialect === 'postgres' ? sql<string>`storage_key collate "C"` : sql<string>`storage_key`

  const getQuery = compileGetQuery(db)
  // Prepared at the first retrieve, after migrate() has created the table.
  let readGet: { get: (...parameters: unknown[]) => unknown } | undefined

  return {
    dialect: opts.dialect,
    // One Kysely instance on one pool; only the table types differ.
    batchDb: db as unknown as Kysely<BatchDatabase>,
    uploadDb: db as unknown as Kysely<UploadDatabase>,

    async migrate () {
      await migrateToLatest(db)
    },

    async insert (record) {
      await db.insertInto('files').values(recordToRow(record)).execute()
    },

    async insertNext (record) {
      return opts.dialect === 'postgres' ? await insertNextPostgres(db, record) : await insertNextSqlite(db, record)
    },

    async get (project, id, now) {
      let row: FileRow | undefined
      if (opts.prepareRead !== undefined) {
        readGet ??= opts.prepareRead(getQuery.sql)
        row = readGet.get(project, id, now) as FileRow | undefined
      } else {
        row = (await db.executeQuery<FileRow>({ ...getQuery, parameters: [project, id, now] })).rows[0]
      }
      return row === undefined ? null : rowToRecord(row)
    },

    async list (query: ListFilesQuery): Promise<ListFilesPage> {
      // limit + 1 below would turn a limit of 0 into "no files, but more to come",
      // and a caller following hasMore would loop forever.
      if (!Number.isSafeInteger(query.limit) || query.limit < 1) {
        throw new RangeError(`list limit must be a positive integer, got ${query.limit}`)
      }
      let select = db
        .selectFrom('files')
        .selectAll()
        .where('project', '=', query.project)
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', query.now)]))
      if (query.purpose !== undefined) {
        select = select.where('purpose', '=', query.purpose)
      }
      // Ids are `file-` + ULID, so comparing ids is comparing creation order, and the
      // cursor file need not exist any more (deleted or expired between pages).
      if (query.after !== undefined) {
        select = select.where('id', query.order === 'asc' ? '>' : '<', query.after)
      }
      // One row beyond the page tells whether another page exists, without a count.
      const rows = await select
        .orderBy('id', query.order)
        .limit(query.limit + 1)
        .execute()
      const hasMore = rows.length > query.limit
      return {
        files: rows.slice(0, query.limit).map(rowToRecord),
        hasMore
      }
    },

    async delete (project, id) {
      const row = await db
        .deleteFrom('files')
        .where('project', '=', project)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirst()
      return row === undefined ? null : rowToRecord(row)
    },

    async deleteExpired (now, limit) {
      // One statement picks and deletes: each expired row is returned to exactly one
      // caller, so replicas sweeping together never delete the same file's object twice.
      // PostgreSQL skips rows another sweeper holds instead of waiting for them.
      let expired = db
        .selectFrom('files')
        .select('id')
        .where('expires_at', '<=', now)
        .orderBy('expires_at')
        .limit(limit)
      if (opts.dialect === 'postgres') expired = expired.forUpdate().skipLocked()
      const rows = await db
        .deleteFrom('files')
        .where('id', 'in', expired)
        .where('expires_at', '<=', now)
        .returningAll()
        .execute()
      return rows.map(rowToRecord)
    },

    async scan (afterId, limit) {
      let select = db.selectFrom('files').selectAll()
      if (afterId !== undefined) select = select.where('id', '>', afterId)
      const rows = await select.orderBy('id').limit(limit).execute()
      return rows.map(rowToRecord)
    },

    async scanByStorageKey (afterKey, limit) {
      let select = db.selectFrom('files').selectAll()
      if (afterKey !== undefined) select = select.where(storageKey, '>', afterKey)
      const rows = await select.orderBy(storageKey).limit(limit).execute()
      return rows.map(rowToRecord)
    },

    async readDeploymentId () {
      const row = await db.selectFrom('files_api_deployment').select('id').where('singleton', '=', 'deployment').executeTakeFirst()
      return row?.id ?? null
    },

    async recordDeploymentId (id) {
      await db.insertInto('files_api_deployment')
        .values({ singleton: 'deployment', id, created_at: Math.floor(Date.now() / 1000) })
        .onConflict((oc) => oc.column('singleton').doNothing())
        .execute()
      const row = await db.selectFrom('files_api_deployment').select('id').where('singleton', '=', 'deployment').executeTakeFirstOrThrow()
      return row.id
    },

    // SQLite is one node: a guard in this process is enough (PostgreSQL overrides this).
    async withReconcileLock (fn) {
      if (reconciling) return null
      reconciling = true
      try {
        return { value: await fn() }
      } finally {
        reconciling = false
      }
    },

    async existingKeys (storageKeys) {
      if (storageKeys.length === 0) return new Set()
      const rows = await db.selectFrom('files').select('storage_key').where('storage_key', 'in', [...storageKeys]).execute()
      return new Set(rows.map((row) => row.storage_key))
    },

    async usage (project, now) {
      // One aggregate: count and sum in the same snapshot. count/sum are strings on
      // PostgreSQL (bigint and numeric), numbers on SQLite; sum is null without rows.
      const row = await db
        .selectFrom('files')
        .select((eb) => [
          eb.fn.countAll<number | string>().as('files'),
          eb.fn.sum<number | string | null>('bytes').as('bytes')
        ])
        .where('project', '=', project)
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
        .executeTakeFirstOrThrow()
      return { files: toNumber(row.files), bytes: row.bytes === null ? 0 : toNumber(row.bytes) }
    },

    async check () {
      await sql`select 1`.execute(db)
    },

    close () {
      // Shutdown paths (signal handler, plugin onClose, tests) may each call close.
      closing ??= (async () => {
        await db.destroy()
        if (opts.onClose !== undefined) await opts.onClose()
      })()
      return closing
    }
  }
}
