import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import { inspect } from 'node:util'
import t, { type Test } from 'tap'
import type { FileRecord, FileStore } from '../../src/metadata/file-store.js'
import { createPostgresFileStore, describeConnectionString } from '../../src/metadata/postgres-file-store.js'
import { KEY_A, startServer } from '../helpers/app.js'
import { getJson, postMultipart } from '../helpers/multipart.js'
import { freshDatabase, NO_POSTGRES_REASON, testDatabaseUrl, withClient } from '../helpers/postgres.js'
import { runFileStoreContract } from './file-store-contract.js'

/**
 * Kysely's migration lock (PostgresAdapter LOCK_ID in node_modules/kysely/dist/esm/
 * dialect/postgres/postgres-adapter.js). Holding it here shows that migrate() waits for
 * it; if a Kysely upgrade dropped or renamed the lock, that test fails.
 */
const KYSELY_MIGRATION_LOCK_ID = '3853314791062309107'

const serverUrl = testDatabaseUrl()

function record (id: string, overrides: Partial<FileRecord> = {}): FileRecord {
  return {
    id,
    project: 'p',
    filename: 'a.jsonl',
    purpose: 'batch',
    bytes: 10,
    createdAt: 1_750_000_000,
    expiresAt: null,
    requestCount: 1,
    sha256: 'f'.repeat(64),
    storageKey: `files/p/${id}`,
    warnings: [],
    ...overrides
  }
}

async function openStore (t: Test, url: string): Promise<FileStore> {
  const store = await createPostgresFileStore({ connectionString: url, poolMax: 4 })
  t.teardown(() => store.close())
  return store
}

if (serverUrl === undefined) {
  t.test('postgres file store', { skip: NO_POSTGRES_REASON }, async () => {})
} else {
  runFileStoreContract(t, 'postgres file store', async (t) => openStore(t, await freshDatabase(t, serverUrl)))

  t.test('replicas migrating an empty database at once: all succeed, each migration runs once', async (t) => {
    const appliedNames = async (url: string): Promise<string[]> =>
      withClient(url, async (c) => (await c.query('select name from files_api_migration order by name')).rows.map((r) => r.name as string))
    // What one store alone applies: the list grows with every new migration.
    const aloneUrl = await freshDatabase(t, serverUrl)
    await (await openStore(t, aloneUrl)).migrate()
    const expected = await appliedNames(aloneUrl)
    t.ok(expected.includes('0001_files'))
    for (let round = 1; round <= 3; round++) {
      const url = await freshDatabase(t, serverUrl)
      const stores = await Promise.all([1, 2, 3].map(async () => openStore(t, url)))
      const results = await Promise.allSettled(stores.map(async (s) => { await s.migrate() }))
      t.strictSame(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled'], `round ${round}: every migrate resolved`)
      // name is the primary key, so a migration run twice would have failed a replica instead.
      t.strictSame(await appliedNames(url), expected, `round ${round}: every migration applied, as by one store alone`)
      await (stores[0] as FileStore).insert(record(`file-round-${round}`))
      t.equal((await (stores[2] as FileStore).get('p', `file-round-${round}`, 0))?.id, `file-round-${round}`, 'the stores share the table')
    }
  })

  t.test('migrate waits for Kysely\'s advisory lock', async (t) => {
    const url = await freshDatabase(t, serverUrl)
    const store = await openStore(t, url)
    await withClient(url, async (holder) => {
      await holder.query('select pg_advisory_lock($1::bigint)', [KYSELY_MIGRATION_LOCK_ID])
      let settled = false
      const migrating = store.migrate().finally(() => { settled = true })
      // Wait until the store's connection is queued behind the lock, rather than sleeping.
      const waiting = async () => (await holder.query(
        `select count(*)::int as n from pg_locks l join pg_stat_activity a using (pid)
         where l.locktype = 'advisory' and not l.granted and a.application_name = 'files-api'`)).rows[0].n as number
      for (let i = 0; i < 200 && await waiting() === 0 && !settled; i++) await new Promise((resolve) => setTimeout(resolve, 25))
      t.equal(settled, false, 'migrate has not finished while another session holds the lock')
      t.equal(await waiting(), 1, 'its connection waits on the advisory lock')
      await holder.query('select pg_advisory_unlock($1::bigint)', [KYSELY_MIGRATION_LOCK_ID])
      await t.resolves(migrating, 'migrate finishes once the lock is released')
    })
  })

  t.test('bigint columns come back as numbers', async (t) => {
    const url = await freshDatabase(t, serverUrl)
    const store = await openStore(t, url)
    await store.migrate()
    const big = record('file-big', { bytes: 2 ** 40 + 7, createdAt: 2 ** 33, expiresAt: 2 ** 33 + 1 })
    const max = record('file-max', { bytes: Number.MAX_SAFE_INTEGER })
    await store.insert(big)
    await store.insert(max)
    const got = await store.get('p', 'file-big', 0)
    t.strictSame(got, big, 'bytes > 2^32 round-trips')
    t.equal(typeof got?.bytes, 'number')
    t.equal(typeof got?.createdAt, 'number')
    t.equal(typeof got?.expiresAt, 'number')
    t.equal((await store.get('p', 'file-max', 0))?.bytes, Number.MAX_SAFE_INTEGER, '2^53 - 1 is exact')
    const listed = await store.list({ project: 'p', limit: 10, order: 'asc', now: 0 })
    t.strictSame(listed.files.map((f) => typeof f.bytes), ['number', 'number'], 'list maps them too')
    const raw = await withClient(url, async (c) => ({
      types: (await c.query(`select column_name, data_type from information_schema.columns
        where table_name = 'files' and column_name in ('bytes', 'created_at', 'expires_at') order by column_name`)).rows,
      value: (await c.query('select bytes from files where id = $1', ['file-big'])).rows[0].bytes as unknown
    }))
    t.strictSame(raw.types, [
      { column_name: 'bytes', data_type: 'bigint' },
      { column_name: 'created_at', data_type: 'bigint' },
      { column_name: 'expires_at', data_type: 'bigint' }
    ])
    t.equal(raw.value, String(2 ** 40 + 7), 'node-pg itself hands int8 over as a string: the store converts')
  })

  t.test('errors never carry the password', async (t) => {
    const url = new URL(await freshDatabase(t, serverUrl))
    const wrong = `wrong-pw-${randomBytes(6).toString('hex')}`
    url.password = wrong
    const store = await openStore(t, url.toString())
    for (const [what, run] of [['check', () => store.check()], ['migrate', () => store.migrate()]] as const) {
      const err = await run().then(() => null, (e: unknown) => e)
      t.ok(err instanceof Error, `${what} rejects`)
      const shown = inspect(err, { depth: 10 })
      t.match(shown, /password authentication failed/, `${what} says why`)
      t.match(shown, `${url.hostname}:${url.port}`, `${what} says where`)
      t.notMatch(shown, wrong, `${what}: not in message, stack, cause or fields`)
    }

    const secret = `s3cret-${randomBytes(6).toString('hex')}`
    for (const bad of [`postgres://u:${secret}@[::1`, `mysql://u:${secret}@127.0.0.1/db`, `u:${secret}@127.0.0.1/db`]) {
      const err = await createPostgresFileStore({ connectionString: bad }).then(() => null, (e: unknown) => e)
      t.ok(err instanceof Error, `refused: a malformed URL (${bad.slice(0, 5)}…)`)
      t.match(String(err), /DATABASE_URL/)
      t.notMatch(inspect(err, { depth: 10 }), secret)
    }
    t.equal(describeConnectionString(`postgresql://u:${secret}@db.internal:6432/files?sslmode=require`),
      'postgresql://u@db.internal:6432/files')
  })

  t.test('the app on DATABASE_URL: files land in PostgreSQL, a dropped connection is survived, nothing logs the URL', async (t) => {
    const url = await freshDatabase(t, serverUrl)
    const password = new URL(url).password
    let logged = ''
    const stream = new Writable({ write (chunk: Buffer, _enc, done) { logged += chunk.toString(); done() } })
    const server = await startServer(t, { DATABASE_URL: url, DATABASE_POOL_MAX: '3' }, { logger: { level: 'trace', stream } })
    t.equal(server.app.fileStore.dialect, 'postgres')

    const line = JSON.stringify({ custom_id: '1', method: 'POST', url: '/v1/embeddings', body: { model: 'e', input: 'x' } })
    const upload = async () => postMultipart(`${server.url}/v1/files`,
      [{ name: 'purpose', value: 'batch' }, { name: 'file', filename: 'a.jsonl', content: Buffer.from(line) }], { key: KEY_A })
    const first = await upload()
    t.equal(first.status, 200, first.body)
    const id = first.json().id as string
    const rows = await withClient(url, async (c) => (await c.query('select project, bytes from files where id = $1', [id])).rows)
    t.strictSame(rows, [{ project: 'project-a', bytes: String(line.length) }], 'the row is in PostgreSQL')

    // The server ends the app's idle connections (a restart or failover): the pool reports
    // it through the app's log and the next request gets a fresh connection.
    const ended = await withClient(url, async (c) => (await c.query(
      `select count(*)::int as n from (select pg_terminate_backend(pid) from pg_stat_activity
       where datname = current_database() and application_name = 'files-api') x`)).rows[0].n as number)
    t.ok(ended >= 1, 'the app held a connection')
    // Each ended connection reports on its own socket; a request sent before the last one
    // did could still pick it (and fail once), as it would during a real failover.
    const reported = () => logged.split('idle PostgreSQL connection failed').length - 1
    for (let i = 0; i < 250 && reported() < ended; i++) await new Promise((resolve) => setTimeout(resolve, 20))
    t.equal(reported(), ended, 'each ended connection was logged, and the process did not crash')
    t.equal((await getJson(`${server.url}/v1/files/${id}`, KEY_A)).status, 200, 'reads work again')
    t.equal((await upload()).status, 200, 'writes work again')

    await server.app.close()
    t.ok(logged.length > 0, 'something was logged')
    t.notMatch(logged, password, 'the password is in no log line')
    t.notMatch(logged, url, 'nor the connection string')
  })
}
