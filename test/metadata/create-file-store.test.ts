import { stat } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { createFileStore } from '../../src/metadata/create-file-store.js'
import { freshDatabase, NO_POSTGRES_REASON, testDatabaseUrl } from '../helpers/postgres.js'

t.test('without DATABASE_URL: SQLite at DATA_DIR/files.db', async (t) => {
  const dataDir = t.testdir()
  const store = await createFileStore(loadConfig({ DATA_DIR: dataDir }))
  t.teardown(() => store.close())
  t.equal(store.dialect, 'sqlite')
  await store.migrate()
  t.ok((await stat(path.join(dataDir, 'files.db'))).isFile())
})

t.test('SQLITE_PATH moves the SQLite file', async (t) => {
  const dir = t.testdir()
  const file = path.join(dir, 'elsewhere', 'meta.db')
  const store = await createFileStore(loadConfig({ DATA_DIR: path.join(dir, 'data'), SQLITE_PATH: file }))
  t.teardown(() => store.close())
  await store.migrate()
  t.ok((await stat(file)).isFile())
})

t.test('DATABASE_POOL_MAX defaults to 10 and must be a positive integer', async (t) => {
  t.equal(loadConfig({}).DATABASE_POOL_MAX, 10)
  t.equal(loadConfig({ DATABASE_POOL_MAX: '3' }).DATABASE_POOL_MAX, 3)
  t.throws(() => loadConfig({ DATABASE_POOL_MAX: '0' }), /DATABASE_POOL_MAX/)
})

t.test('a malformed DATABASE_URL is refused without echoing it', async (t) => {
  const url = 'postgres://user:hunter2-secret@[bad-host/db'
  const config = loadConfig({ DATABASE_URL: url })
  const err = await createFileStore(config).then(() => null, (e: unknown) => e)
  t.match(String(err), /DATABASE_URL is not a valid URL/)
  t.notMatch(String(err), 'hunter2-secret')
})

const serverUrl = testDatabaseUrl()
t.test('with DATABASE_URL: PostgreSQL', { skip: serverUrl === undefined ? NO_POSTGRES_REASON : false }, async (t) => {
  if (serverUrl === undefined) return
  const url = await freshDatabase(t, serverUrl)
  const store = await createFileStore(loadConfig({ DATA_DIR: t.testdir(), DATABASE_URL: url, DATABASE_POOL_MAX: '2' }))
  t.teardown(() => store.close())
  t.equal(store.dialect, 'postgres')
  await store.migrate()
  await t.resolves(store.check())
})
