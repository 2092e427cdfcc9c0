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
  '0003_batches': {
    // The Batches API (issue 10): the batch row, its planned chunks (the queue, with
    // leases fenced by an epoch) and the results recorded while chunks run. The design
    // and the lease protocol are described in src/batches/queue.ts.
    async up (db: Kysely<unknown>): Promise<void> {
      await createBatchesTable(db)
      await createBatchChunksTable(db)
      await createBatchResultsTable(db)
    }
  },
  '0004_deployment': {
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
  '0005_storage_key_bytewise_index': {
    // Reconciliation reads rows in bytewise storage_key order (S3's listing order). SQLite's
    // default BINARY collation is that order and 0002's index serves it; PostgreSQL's
    // database collation (en_US…) is not, so it gets an index in the "C" collation.
    async up (db: Kysely<unknown>): Promise<void> {
      if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return
      await sql`create index files_storage_key_c_idx on files (storage_key collate "C")`.execute(db)
    }
  },
  '0006_batch_worker_lease': {
    // The batch-level work (planning a validating batch, finalizing a finished or cancelled
    // one) is leased like a chunk: one replica does it at a time, and a killed replica's
    // lease lapses for another to take (src/batches/batch-tasks.ts).
    async up (db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('batches').addColumn('worker_owner', 'text').execute()
      await db.schema.alterTable('batches').addColumn('worker_expires_at_ms', 'bigint').execute()
    }
  },
  '0007_batch_workers': {
    // The replicas running a batch worker, each with a heartbeat (database clock), so each
    // takes its share of an upstream's deployment-wide ceiling (src/batches/worker-registry.ts).
    async up (db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('batch_workers')
        .addColumn('owner', 'text', (col) => col.primaryKey())
        .addColumn('started_at_ms', 'bigint', (col) => col.notNull())
        .addColumn('heartbeat_at_ms', 'bigint', (col) => col.notNull())
        .execute()
    }
  },
  '0008_batch_upstream_retries': {
    // Retries sent to the upstream, per recorded line and folded into the batch like usage,
    // so an operator sees a batch that runs on retries (issue 11 item 6; not an OpenAI field).
    async up (db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('batch_results').addColumn('upstream_retries', 'bigint', (col) => col.notNull().defaultTo(0)).execute()
      await db.schema.alterTable('batches').addColumn('upstream_retries', 'bigint', (col) => col.notNull().defaultTo(0)).execute()
    }
  },
  '0009_uploads': {
    // OpenAI's Uploads API (issue 13): an upload and the parts sent for it. A part's bytes
    // are an object of their own (src/uploads/upload-service.ts); its row, written once the
    // object is complete, is what makes it usable, as a file's row does for a file.
    async up (db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('uploads')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('project', 'text', (col) => col.notNull())
        .addColumn('filename', 'text', (col) => col.notNull())
        .addColumn('purpose', 'text', (col) => col.notNull())
        .addColumn('bytes', 'bigint', (col) => col.notNull())
        .addColumn('mime_type', 'text', (col) => col.notNull())
        .addColumn('status', 'text', (col) => col.notNull())
        .addColumn('created_at', 'bigint', (col) => col.notNull())
        .addColumn('expires_at', 'bigint', (col) => col.notNull())
        .addColumn('file_expires_after_seconds', 'bigint')
        .addColumn('file_id', 'text')
        .execute()
      // The sweeper looks for pending uploads past expires_at; creation counts a project's pending ones.
      await db.schema.createIndex('uploads_status_expires_at_idx').on('uploads').columns(['status', 'expires_at']).execute()
      await db.schema.createIndex('uploads_project_status_idx').on('uploads').columns(['project', 'status']).execute()
      await db.schema
        .createTable('upload_parts')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('upload_id', 'text', (col) => col.notNull().references('uploads.id').onDelete('cascade'))
        .addColumn('bytes', 'bigint', (col) => col.notNull())
        .addColumn('created_at', 'bigint', (col) => col.notNull())
        .addColumn('storage_key', 'text', (col) => col.notNull())
        .execute()
      await db.schema.createIndex('upload_parts_upload_id_idx').on('upload_parts').columns(['upload_id', 'id']).execute()
    }
  }
}

/** OpenAI's usage fields (input_tokens_details.cached_tokens and output_tokens_details.reasoning_tokens flattened). */
const USAGE_COLUMNS = ['input_tokens', 'cached_tokens', 'output_tokens', 'reasoning_tokens', 'total_tokens'] as const

/** One row per batch: OpenAI's Batch object, with counts and usage kept as columns so they are incremented in SQL. */
async function createBatchesTable (db: Kysely<unknown>): Promise<void> {
  let table = db.schema
    .createTable('batches')
    .addColumn('id', 'text', (col) => col.primaryKey())
    .addColumn('project', 'text', (col) => col.notNull())
    .addColumn('status', 'text', (col) => col.notNull())
    .addColumn('endpoint', 'text', (col) => col.notNull())
    .addColumn('model', 'text')
    .addColumn('input_file_id', 'text', (col) => col.notNull())
    .addColumn('completion_window', 'text', (col) => col.notNull())
    .addColumn('metadata', 'text')
    .addColumn('output_expires_after_seconds', 'bigint')
    .addColumn('request_total', 'bigint', (col) => col.notNull().defaultTo(0))
    .addColumn('request_completed', 'bigint', (col) => col.notNull().defaultTo(0))
    .addColumn('request_failed', 'bigint', (col) => col.notNull().defaultTo(0))
  for (const usage of USAGE_COLUMNS) {
    table = table.addColumn(`usage_${usage}`, 'bigint', (col) => col.notNull().defaultTo(0))
  }
  // Unix seconds, as OpenAI's *_at fields; each is written by the transition into its status.
  table = table.addColumn('created_at', 'bigint', (col) => col.notNull())
  for (const at of ['in_progress_at', 'finalizing_at', 'completed_at', 'failed_at', 'expired_at', 'cancelling_at', 'cancelled_at', 'expires_at']) {
    table = table.addColumn(at, 'bigint')
  }
  await table
    .addColumn('output_file_id', 'text')
    .addColumn('error_file_id', 'text')
    .addColumn('errors', 'text')
    .execute()
  // Listing is per project, keyset-paged on id; the expiry sweep scans by expires_at.
  await db.schema.createIndex('batches_project_id_idx').on('batches').columns(['project', 'id']).execute()
  await db.schema.createIndex('batches_status_expires_at_idx').on('batches').columns(['status', 'expires_at']).execute()
}

/**
 * The queue: one row per planned chunk (a byte range and the line range it holds).
 * Lease times are unix milliseconds of the database's clock: seconds would make a
 * lease of a few seconds lapse up to a second early or late.
 */
async function createBatchChunksTable (db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('batch_chunks')
    .addColumn('batch_id', 'text', (col) => col.notNull().references('batches.id').onDelete('cascade'))
    .addColumn('seq', 'integer', (col) => col.notNull())
    .addColumn('byte_start', 'bigint', (col) => col.notNull())
    .addColumn('byte_end', 'bigint', (col) => col.notNull())
    .addColumn('line_start', 'bigint', (col) => col.notNull())
    .addColumn('line_end', 'bigint', (col) => col.notNull())
    .addColumn('state', 'text', (col) => col.notNull().defaultTo('queued'))
    .addColumn('lease_owner', 'text')
    .addColumn('lease_epoch', 'bigint', (col) => col.notNull().defaultTo(0))
    .addColumn('lease_expires_at_ms', 'bigint')
    .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('not_before_ms', 'bigint', (col) => col.notNull().defaultTo(0))
    .addColumn('done_at_ms', 'bigint')
    .addColumn('output_lines', 'bigint')
    .addColumn('error_lines', 'bigint')
    .addPrimaryKeyConstraint('batch_chunks_pk', ['batch_id', 'seq'])
    .execute()
  // Claims look at claimable chunks only; release on stop looks up by owner.
  await db.schema.createIndex('batch_chunks_state_idx').on('batch_chunks').columns(['state', 'batch_id', 'seq']).execute()
  await db.schema.createIndex('batch_chunks_owner_idx').on('batch_chunks').column('lease_owner').execute()
}

/**
 * Results recorded as each request completes, until the chunk's part objects are
 * written and the chunk is marked done, which folds the rows' counts and usage into
 * the batch row and deletes them: the table holds the results of running chunks
 * only, never a whole batch, and recording a line is one INSERT (no update of the
 * batch row, which every replica would queue on).
 */
async function createBatchResultsTable (db: Kysely<unknown>): Promise<void> {
  let table = db.schema
    .createTable('batch_results')
    .addColumn('batch_id', 'text', (col) => col.notNull())
    .addColumn('line', 'bigint', (col) => col.notNull())
    .addColumn('seq', 'integer', (col) => col.notNull())
    .addColumn('kind', 'text', (col) => col.notNull())
    .addColumn('custom_id', 'text', (col) => col.notNull())
    .addColumn('result', 'text', (col) => col.notNull())
    .addColumn('recorded_epoch', 'bigint', (col) => col.notNull())
  for (const usage of USAGE_COLUMNS) {
    table = table.addColumn(`usage_${usage}`, 'bigint', (col) => col.notNull().defaultTo(0))
  }
  await table
    .addPrimaryKeyConstraint('batch_results_pk', ['batch_id', 'line'])
    .addForeignKeyConstraint('batch_results_chunk_fk', ['batch_id', 'seq'], 'batch_chunks', ['batch_id', 'seq'], (fk) => fk.onDelete('cascade'))
    .execute()
  await db.schema.createIndex('batch_results_chunk_idx').on('batch_results').columns(['batch_id', 'seq', 'kind', 'line']).execute()
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
