import { Migrator, PostgresAdapter, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely'

/**
 * Schema migrations, kept in code rather than in files on disk so that the compiled
 * build, the tests and `tsx` all see the same list without path juggling.
 *
 * Column types are chosen to mean the same on SQLite and PostgreSQL: `bigint` for
 * byte counts and unix seconds (files can exceed 2 GiB, and seconds outgrow int4 in
 * 2038), `text` for JSON so neither side needs a JSON column type.
 *
 * Migrations are append-only: never edit one that has shipped, add the next instead.
 */
const migrations: Record<string, Migration> = {
  '0001_files': {
    async up (db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('files')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('project', 'text', (col) => col.notNull())
        .addColumn('filename', 'text', (col) => col.notNull())
        .addColumn('purpose', 'text', (col) => col.notNull())
        .addColumn('bytes', 'bigint', (col) => col.notNull())
        .addColumn('created_at', 'bigint', (col) => col.notNull())
        .addColumn('expires_at', 'bigint')
        .addColumn('request_count', 'integer')
        .addColumn('sha256', 'text', (col) => col.notNull())
        .addColumn('storage_key', 'text', (col) => col.notNull())
        .addColumn('warnings', 'text', (col) => col.notNull().defaultTo('[]'))
        .execute()

      // Listing is always per project, keyset-paged on id, optionally by purpose.
      await db.schema
        .createIndex('files_project_id_idx')
        .on('files')
        .columns(['project', 'id'])
        .execute()
      await db.schema
        .createIndex('files_project_purpose_id_idx')
        .on('files')
        .columns(['project', 'purpose', 'id'])
        .execute()
      // The expiry reaper scans across projects by expiry time.
      await db.schema
        .createIndex('files_expires_at_idx')
        .on('files')
        .column('expires_at')
        .execute()
    }
  },
  '0002_storage_key_index': {
    // Reconciliation asks which object keys have a row; each object has one row at most.
    async up (db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createIndex('files_storage_key_idx')
        .on('files')
        .column('storage_key')
        .unique()
        .execute()
    }
  },
  '0003_deployment': {
    // One row: the id recorded at the first start, also written into the blob store, so a
    // database and a store that never belonged together refuse to start (issue 9, item 4).
    async up (db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('files_api_deployment')
        .addColumn('singleton', 'text', (col) => col.primaryKey())
        .addColumn('id', 'text', (col) => col.notNull())
        .addColumn('created_at', 'bigint', (col) => col.notNull())
        .execute()
    }
  },
  '0004_storage_key_bytewise_index': {
    // Reconciliation reads rows in bytewise storage_key order (S3's listing order). SQLite's
    // default BINARY collation is that order and 0002's index serves it; PostgreSQL's
    // database collation (en_US…) is not, so it gets an index in the "C" collation.
    async up (db: Kysely<unknown>): Promise<void> {
      if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return
      await sql`create index files_storage_key_c_idx on files (storage_key collate "C")`.execute(db)
    }
  }
}

const migrationProvider: MigrationProvider = {
  async getMigrations () {
    return migrations
  }
}

/**
 * Brings the schema up to date. Safe to call on every start: applied migrations are
 * recorded and skipped. The bookkeeping tables carry an app prefix so a PostgreSQL
 * database shared with another Kysely app does not mix up the two histories.
 */
export async function migrateToLatest<DB> (db: Kysely<DB>): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: migrationProvider,
    migrationTableName: 'files_api_migration',
    migrationLockTableName: 'files_api_migration_lock'
  })
  const { error } = await migrator.migrateToLatest()
  if (error !== undefined) {
    throw error instanceof Error ? error : new Error(`migration failed: ${String(error)}`)
  }
}
