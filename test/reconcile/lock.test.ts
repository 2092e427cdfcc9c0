import t from 'tap'
import type { FileRecord } from '../../src/metadata/file-store.js'
import { createPostgresFileStore } from '../../src/metadata/postgres-file-store.js'
import { createSqliteFileStore } from '../../src/metadata/sqlite-file-store.js'
import { freshDatabase, NO_POSTGRES_REASON, testDatabaseUrl } from '../helpers/postgres.js'

const row = (id: string, storageKey: string): FileRecord => ({ id, project: 'p', filename: 'f', purpose: 'user_data', bytes: 1, createdAt: 1, expiresAt: null, requestCount: null, sha256: '0'.repeat(64), storageKey, warnings: [] })
const KEYS = ['files/p/x', 'files/p-q/x', 'files/P/x', 'files/p.r/x', 'files/pa/x']
const BYTEWISE = ['files/P/x', 'files/p-q/x', 'files/p.r/x', 'files/p/x', 'files/pa/x']

t.test('postgres: one replica reconciles at a time (advisory lock); rows come in bytewise key order', { skip: testDatabaseUrl() === undefined ? NO_POSTGRES_REASON : false }, async (t) => {
  const url = await freshDatabase(t, testDatabaseUrl() ?? '')
  const a = await createPostgresFileStore({ connectionString: url })
  const b = await createPostgresFileStore({ connectionString: url })
  t.teardown(async () => { await a.close(); await b.close() })
  await a.migrate()
  let release = (): void => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  const first = a.withReconcileLock(async () => { await held; return 'a ran' })
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(await b.withReconcileLock(async () => 'b ran'), null, 'another replica skips while the lock is held')
  release()
  t.same(await first, { value: 'a ran' })
  t.same(await b.withReconcileLock(async () => 'b ran'), { value: 'b ran' }, 'and runs once it is released')

  for (const [i, key] of KEYS.entries()) await a.insert(row(`file-${i}`, key))
  t.same((await a.scanByStorageKey(undefined, 10)).map((r) => r.storageKey), BYTEWISE, 'the "C" collation, as S3 lists')
  t.same((await a.scanByStorageKey('files/p-q/x', 2)).map((r) => r.storageKey), ['files/p.r/x', 'files/p/x'])
})

t.test('sqlite: a second run in the same process is skipped; rows in bytewise key order', async (t) => {
  const store = await createSqliteFileStore({ filename: ':memory:' })
  t.teardown(() => store.close())
  await store.migrate()
  const inner = await store.withReconcileLock(async () => store.withReconcileLock(async () => 'nested'))
  t.same(inner, { value: null })
  for (const [i, key] of KEYS.entries()) await store.insert(row(`file-${i}`, key))
  t.same((await store.scanByStorageKey(undefined, 10)).map((r) => r.storageKey), BYTEWISE)
})
