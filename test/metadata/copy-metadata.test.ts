import BetterSqlite3 from 'better-sqlite3'
import { Kysely, SqliteDialect, sql } from 'kysely'
import t, { type Test } from 'tap'
import { copyMetadata, type AnyDatabase } from '../../src/metadata/copy-metadata.js'
import { migrateToLatest } from '../../src/metadata/migrations.js'

/** Tables keyed by two columns (batch_chunks, batch_results) page and match on both. */

async function migrated (t: Test): Promise<Kysely<AnyDatabase>> {
  const db = new Kysely<AnyDatabase>({ dialect: new SqliteDialect({ database: new BetterSqlite3(':memory:') }) })
  t.teardown(() => db.destroy())
  await migrateToLatest(db)
  return db
}

async function seedBatch (db: Kysely<AnyDatabase>, id: string, chunks: number): Promise<void> {
  await sql`insert into batches (id, project, status, endpoint, input_file_id, completion_window, created_at, expires_at)
            values (${id}, 'p', 'in_progress', '/v1/chat/completions', 'file-x', '24h', 1700000000, 1700086400)`.execute(db)
  for (let seq = 0; seq < chunks; seq++) {
    await sql`insert into batch_chunks (batch_id, seq, byte_start, byte_end, line_start, line_end)
              values (${id}, ${seq}, ${seq * 100}, ${seq * 100 + 99}, ${seq * 10 + 1}, ${seq * 10 + 10})`.execute(db)
  }
}

const count = async (db: Kysely<AnyDatabase>, table: string): Promise<number> =>
  Number((await db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n)

t.test('batches and their chunks are copied across pages of a two-column key, and a re-run copies nothing', async (t) => {
  const source = await migrated(t)
  const target = await migrated(t)
  // 7 chunks each for two batches with a page of 3: pages end mid-batch, so the keyset
  // condition must compare both columns.
  await seedBatch(source, 'batch-a', 7)
  await seedBatch(source, 'batch-b', 7)
  const first = await copyMetadata({ source, target, pageSize: 3 })
  t.same(first.find((r) => r.table === 'batch_chunks'), { table: 'batch_chunks', sourceRows: 14, copied: 14, alreadyPresent: 0, conflicts: 0, conflictKeys: [], foreignRows: 0 })
  t.equal(first.find((r) => r.table === 'batches')?.copied, 2)
  t.equal(await count(target, 'batch_chunks'), 14)
  const rows = await target.selectFrom('batch_chunks').select(['batch_id', 'seq', 'byte_end']).orderBy('batch_id').orderBy('seq').execute()
  t.same(rows.map((r) => `${String(r.batch_id)}/${String(r.seq)}/${String(r.byte_end)}`).slice(5, 9), ['batch-a/5/599', 'batch-a/6/699', 'batch-b/0/99', 'batch-b/1/199'])

  const again = await copyMetadata({ source, target, pageSize: 3 })
  t.same(again.map((r) => [r.table, r.copied, r.alreadyPresent]), [['files', 0, 0], ['files_api_deployment', 0, 0], ['batches', 0, 2], ['batch_chunks', 0, 14], ['batch_results', 0, 0], ['uploads', 0, 0], ['upload_parts', 0, 0]])

  await sql`update batch_chunks set byte_end = 1 where batch_id = 'batch-b' and seq = 3`.execute(target)
  const conflict = await copyMetadata({ source, target, pageSize: 3 })
  t.same(conflict.find((r) => r.table === 'batch_chunks')?.conflictKeys, ['["batch-b","3"]'], 'a conflict names both key columns')
})
