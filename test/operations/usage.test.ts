import path from 'node:path'
import t, { type Test } from 'tap'
import type { FileRecord, FileStore } from '../../src/metadata/file-store.js'
import { createPostgresFileStore } from '../../src/metadata/postgres-file-store.js'
import { createSqliteFileStore } from '../../src/metadata/sqlite-file-store.js'
import { freshDatabase, NO_POSTGRES_REASON, testDatabaseUrl } from '../helpers/postgres.js'

function record (id: string, project: string, bytes: number, expiresAt: number | null): FileRecord {
  return {
    id,
    project,
    filename: 'a.jsonl',
    purpose: 'batch',
    bytes,
    createdAt: 1_750_000_000,
    expiresAt,
    requestCount: 1,
    sha256: '0'.repeat(64),
    storageKey: `files/${project}/${id}`,
    warnings: []
  }
}

/** usage() on each dialect: one aggregate, live rows only, numbers (PostgreSQL answers count and sum as strings). */
async function usageContract (t: Test, store: FileStore): Promise<void> {
  await store.migrate()
  const now = 1_800_000_000
  t.same(await store.usage('p', now), { files: 0, bytes: 0 }, 'no rows: zero, not null')
  // Beyond 2^32, to show the sum is not truncated on the way.
  await store.insert(record('file-01', 'p', 5_000_000_000, null))
  await store.insert(record('file-02', 'p', 7, now + 1))
  await store.insert(record('file-03', 'p', 1000, now))
  await store.insert(record('file-04', 'q', 11, null))
  t.same(await store.usage('p', now), { files: 2, bytes: 5_000_000_007 }, 'expired at now is excluded')
  t.same(await store.usage('p', now - 1), { files: 3, bytes: 5_000_001_007 })
  t.same(await store.usage('p', now + 1), { files: 1, bytes: 5_000_000_000 })
  t.same(await store.usage('q', now), { files: 1, bytes: 11 })
}

t.test('sqlite', async (t) => {
  const store = await createSqliteFileStore({ filename: path.join(t.testdir({}), 'files.db') })
  t.teardown(() => store.close())
  await usageContract(t, store)
})

const serverUrl = testDatabaseUrl()
t.test('postgres', { skip: serverUrl === undefined ? NO_POSTGRES_REASON : false }, async (t) => {
  if (serverUrl === undefined) return
  const store = await createPostgresFileStore({ connectionString: await freshDatabase(t, serverUrl) })
  t.teardown(() => store.close())
  await usageContract(t, store)
})
