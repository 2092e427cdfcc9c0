import { join } from 'node:path'
import BetterSqlite3 from 'better-sqlite3'
import { sql } from 'kysely'
import t from 'tap'
import type { FileRecord } from '../../src/metadata/file-store.js'
import { createSqliteFileStore } from '../../src/metadata/sqlite-file-store.js'
import { runFileStoreContract } from './file-store-contract.js'

runFileStoreContract(t, 'sqlite file store (file)', async (t) => {
  // A directory that does not exist yet: the store creates it.
  const store = await createSqliteFileStore({ filename: join(t.testdir(), 'nested', 'deeper', 'files.db') })
  t.teardown(() => store.close())
  return store
})

runFileStoreContract(t, 'sqlite file store (:memory:)', async (t) => {
  const store = await createSqliteFileStore({ filename: ':memory:' })
  t.teardown(() => store.close())
  return store
})

const record: FileRecord = {
  id: 'file-01JZ0000000000000000000000',
  project: 'proj',
  filename: 'a.jsonl',
  purpose: 'batch',
  bytes: 10,
  createdAt: 1_750_000_000,
  expiresAt: null,
  requestCount: 1,
  sha256: 'f'.repeat(64),
  storageKey: 'files/proj/file-01JZ0000000000000000000000',
  warnings: []
}

t.test('sqlite: schema, WAL and persistence on disk', async (t) => {
  const filename = join(t.testdir(), 'files.db')
  const store = await createSqliteFileStore({ filename })
  t.equal(store.dialect, 'sqlite')
  await store.migrate()
  await store.insert(record)
  await store.close()

  const raw = new BetterSqlite3(filename, { readonly: true })
  t.teardown(() => raw.close())
  t.equal(raw.pragma('journal_mode', { simple: true }), 'wal', 'WAL persists in the file')
  t.strictSame(
    raw.prepare('select name, lower(type) as type, "notnull", dflt_value, pk from pragma_table_info(\'files\') order by cid').all(),
    [
      { name: 'id', type: 'text', notnull: 0, dflt_value: null, pk: 1 },
      { name: 'project', type: 'text', notnull: 1, dflt_value: null, pk: 0 },
      { name: 'filename', type: 'text', notnull: 1, dflt_value: null, pk: 0 },
      { name: 'purpose', type: 'text', notnull: 1, dflt_value: null, pk: 0 },
      { name: 'bytes', type: 'bigint', notnull: 1, dflt_value: null, pk: 0 },
      { name: 'created_at', type: 'bigint', notnull: 1, dflt_value: null, pk: 0 },
      { name: 'expires_at', type: 'bigint', notnull: 0, dflt_value: null, pk: 0 },
      { name: 'request_count', type: 'integer', notnull: 0, dflt_value: null, pk: 0 },
      { name: 'sha256', type: 'text', notnull: 1, dflt_value: null, pk: 0 },
      { name: 'storage_key', type: 'text', notnull: 1, dflt_value: null, pk: 0 },
      { name: 'warnings', type: 'text', notnull: 1, dflt_value: '\'[]\'', pk: 0 }
    ]
  )
  const indexes = raw.prepare(
    'select il.name as name, group_concat(ii.name, \',\') as columns from pragma_index_list(\'files\') il ' +
    'join pragma_index_info(il.name) ii where il.origin = \'c\' group by il.name order by il.name'
  ).all()
  t.strictSame(indexes, [
    { name: 'files_expires_at_idx', columns: 'expires_at' },
    { name: 'files_project_id_idx', columns: 'project,id' },
    { name: 'files_project_purpose_id_idx', columns: 'project,purpose,id' },
    { name: 'files_storage_key_idx', columns: 'storage_key' }
  ])
  t.strictSame(raw.prepare('select name from files_api_migration order by name').all(), [{ name: '0001_files' }, { name: '0002_storage_key_index' }, { name: '0003_batches' }, { name: '0004_deployment' }, { name: '0005_storage_key_bytewise_index' }, { name: '0006_batch_worker_lease' }, { name: '0007_batch_workers' }, { name: '0008_batch_upstream_retries' }, { name: '0009_uploads' }],
    '0005 adds no SQLite index: 0002\'s serves the bytewise order')

  const reopened = await createSqliteFileStore({ filename })
  t.teardown(() => reopened.close())
  await reopened.migrate()
  t.strictSame(await reopened.get('proj', record.id, 1_750_000_000), record, 'data survives a reopen')
})

t.test('sqlite: an unusable path rejects', async (t) => {
  const dir = t.testdir({ 'not-a-dir': 'plain file' })
  await t.rejects(createSqliteFileStore({ filename: join(dir, 'not-a-dir', 'files.db') }))
})

/** `record` as a row, for writers beside the store. */
const ROW = [record.id, record.project, record.filename, record.purpose, record.bytes, record.createdAt, record.expiresAt, record.requestCount, record.sha256, record.storageKey, '[]']
const INSERT_ROW = 'insert into files (id, project, filename, purpose, bytes, created_at, expires_at, request_count, sha256, storage_key, warnings) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'

t.test('sqlite (file): a retrieve sees committed rows only, at once, whoever wrote them', async (t) => {
  const filename = join(t.testdir(), 'files.db')
  const store = await createSqliteFileStore({ filename })
  t.teardown(() => store.close())
  await store.migrate()
  t.equal(await store.get('proj', record.id, 1_750_000_000), null)

  // Another process (the CLI, a backup restore): its open transaction is invisible, its commit is not.
  const other = new BetterSqlite3(filename)
  t.teardown(() => { if (other.open) other.close() })
  other.exec('begin immediate')
  other.prepare(INSERT_ROW).run(...ROW)
  t.equal(await store.get('proj', record.id, 1_750_000_000), null, 'not before its commit')
  other.exec('commit')
  t.strictSame(await store.get('proj', record.id, 1_750_000_000), record, 'at the first retrieve after it')
  other.prepare('delete from files where id = ?').run(record.id)
  t.equal(await store.get('proj', record.id, 1_750_000_000), null, 'a delete too: nothing is cached')
  other.close()

  // The store's own transaction, still open on its write connection: the retrieve neither
  // sees its row nor waits for it (it reads on a connection of its own).
  let inside: FileRecord | null | 'waited' = 'waited'
  await store.batchDb.transaction().execute(async (trx) => {
    await sql`insert into files (id, project, filename, purpose, bytes, created_at, expires_at, request_count, sha256, storage_key, warnings) values (${sql.join(ROW)})`.execute(trx)
    inside = await Promise.race([store.get('proj', record.id, 1_750_000_000), new Promise<'waited'>((resolve) => setTimeout(() => { resolve('waited') }, 2000))])
  })
  t.equal(inside, null, 'inside the open transaction: not seen, and not queued behind it')
  t.strictSame(await store.get('proj', record.id, 1_750_000_000), record, 'after its commit')
})
