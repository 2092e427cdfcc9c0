import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import BetterSqlite3 from 'better-sqlite3'
import t, { type Test } from 'tap'
import type { FileStore } from '../../src/metadata/file-store.js'
import { createPostgresFileStore } from '../../src/metadata/postgres-file-store.js'
import { createSqliteFileStore } from '../../src/metadata/sqlite-file-store.js'
import type { BlobStore } from '../../src/storage/blob-store.js'
import { createFsBlobStore } from '../../src/storage/fs-blob-store.js'
import { KEY_A, listTree, startServer, type TestServer } from '../helpers/app.js'
import { startFaultProxy, targetOf, type FaultProxy } from '../helpers/fault-proxy.js'
import { NO_POSTGRES_REASON, freshDatabase, testDatabaseUrl, withClient } from '../helpers/postgres.js'
import { batchFile } from './helpers/batch.js'
import { multipartBytes, openRaw, rawUpload, uploadHead, type RawResponse } from './helpers/raw-http.js'

/*
 * The final insert fails after the object was completed: the pipeline itself must
 * delete the object (reconciliation is off here, RECONCILE_INTERVAL_MS=0). The blob
 * store is the real fs driver, wrapped only to record the calls the pipeline makes, so
 * the test sees the object being stored and then removed rather than never stored.
 */

const DATABASE_UNAVAILABLE = {
  error: {
    message: 'The metadata database is unavailable; nothing was stored. Try again later.',
    type: 'server_error',
    param: null,
    code: 'database_unavailable'
  }
}

function recording (store: BlobStore, calls: string[]): BlobStore {
  return {
    ...store,
    put: async (key, body, options) => {
      const result = await store.put(key, body, options)
      calls.push(`put ${key}`)
      return result
    },
    delete: async (key) => {
      await store.delete(key)
      calls.push(`delete ${key}`)
    }
  }
}

interface Rig { server: TestServer, root: string, calls: string[] }

async function startRig (t: Test, fileStore: FileStore): Promise<Rig> {
  const dir = await mkdtemp(path.join(tmpdir(), 'files-api-faults-db-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const root = path.join(dir, 'blobs')
  const calls: string[] = []
  const blobStore = recording(await createFsBlobStore({ root }), calls)
  const server = await startServer(t, { RECONCILE_INTERVAL_MS: '0' }, { fileStore, blobStore })
  // Start-up wrote the deployment marker; only the pipeline's calls count from here.
  calls.length = 0
  return { server, root, calls }
}

const BODY = await multipartBytes([{ name: 'purpose', value: 'batch' }, { name: 'file', filename: 'db.jsonl', content: batchFile(2000) }])

/** Sends the first half of an upload, runs `inject` while it is being stored, sends the rest. */
async function uploadWithFault (rig: Rig, inject: () => Promise<void>): Promise<RawResponse | null> {
  const connection = await openRaw(rig.server.url)
  const half = Math.floor(BODY.length / 2)
  await connection.write(uploadHead(KEY_A, BODY.length))
  await connection.write(BODY.subarray(0, half))
  // The object is being written (a temp file exists) before the fault.
  for (let i = 0; i < 200 && (await listTree(rig.root)).length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  await inject()
  await connection.write(BODY.subarray(half))
  const response = await connection.response()
  connection.socket.destroy()
  return response
}

/** The object was completed, then removed by the pipeline; nothing is left on disk. */
async function assertObjectRemoved (t: Test, rig: Rig): Promise<void> {
  t.equal(rig.calls.length, 2, 'one put, one delete')
  const [put, removed] = rig.calls
  t.match(put, /^put files\/project-a\/upload-/)
  t.equal(removed, put?.replace(/^put/, 'delete'), 'the pipeline deleted the very object it had stored')
  t.same(await listTree(rig.root), [], 'no object and no temp file on disk')
}

async function assertStillWorks (t: Test, rig: Rig): Promise<void> {
  const res = await rawUpload(rig.server.url, KEY_A, BODY)
  t.equal(res?.status, 200, 'the next upload is stored')
}

t.test('SQLite locked by another writer at the insert: 503 database_unavailable, the object removed', async (t) => {
  // A real second connection holding the write lock past the store's busy timeout: the
  // same SQLITE_BUSY a long CLI reconcile or a backup would cause.
  const dir = await mkdtemp(path.join(tmpdir(), 'files-api-faults-sqlite-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const filename = path.join(dir, 'files.db')
  const fileStore = await createSqliteFileStore({ filename, busyTimeoutMs: 100 })
  t.teardown(() => fileStore.close())
  const rig = await startRig(t, fileStore)
  const locker = new BetterSqlite3(filename)
  t.teardown(() => { if (locker.open) locker.close() })

  const res = await uploadWithFault(rig, async () => { locker.exec('BEGIN EXCLUSIVE') })
  t.equal(res?.status, 503)
  t.same(JSON.parse(res?.body ?? '{}'), DATABASE_UNAVAILABLE)
  await assertObjectRemoved(t, rig)
  locker.exec('ROLLBACK')
  locker.close()
  t.same(await fileStore.scan(undefined, 100), [], 'no row')
  await assertStillWorks(t, rig)
})

const pgUrl = testDatabaseUrl()
const pgSkip = pgUrl === undefined ? NO_POSTGRES_REASON : false

async function pgRig (t: Test, connectionString: string): Promise<Rig> {
  const fileStore = await createPostgresFileStore({ connectionString, connectionTimeoutMs: 2000 })
  t.teardown(() => fileStore.close())
  return await startRig(t, fileStore)
}

async function pgRows (url: string): Promise<number> {
  return await withClient(url, async (client) => Number((await client.query<{ n: string }>('select count(*) as n from files')).rows[0]?.n))
}

/** A trigger on the files table running `body` (PL/pgSQL) before each insert. */
async function installTrigger (url: string, body: string): Promise<void> {
  await withClient(url, async (client) => {
    await client.query(`create function files_api_fault() returns trigger language plpgsql as $$ begin ${body} end $$`)
    await client.query('create trigger files_api_fault before insert on files for each row execute function files_api_fault()')
  })
}

async function dropTrigger (url: string): Promise<void> {
  await withClient(url, async (client) => { await client.query('drop trigger files_api_fault on files; drop function files_api_fault()') })
}

t.test('PostgreSQL refuses the insert (a trigger raises): 503, the object removed, no row', { skip: pgSkip }, async (t) => {
  const url = await freshDatabase(t, pgUrl ?? '')
  const rig = await pgRig(t, url)
  await installTrigger(url, 'raise exception \'injected fault: insert refused\';')
  const res = await uploadWithFault(rig, async () => {})
  t.equal(res?.status, 503)
  t.same(JSON.parse(res?.body ?? '{}'), DATABASE_UNAVAILABLE)
  await assertObjectRemoved(t, rig)
  t.equal(await pgRows(url), 0, 'no row')
  await dropTrigger(url)
  await assertStillWorks(t, rig)
  t.equal(await pgRows(url), 1)
})

t.test('PostgreSQL connection terminated in the middle of the insert: 503, the object removed, no row', { skip: pgSkip }, async (t) => {
  const url = await freshDatabase(t, pgUrl ?? '')
  const rig = await pgRig(t, url)
  // The backend running the insert terminates itself, exactly as pg_terminate_backend from
  // an operator (or a failover) would end it mid-statement.
  await installTrigger(url, 'perform pg_terminate_backend(pg_backend_pid()); return new;')
  const res = await uploadWithFault(rig, async () => {})
  t.equal(res?.status, 503)
  t.same(JSON.parse(res?.body ?? '{}'), DATABASE_UNAVAILABLE)
  await assertObjectRemoved(t, rig)
  t.equal(await pgRows(url), 0, 'no row: the transaction died with the connection')
  await dropTrigger(url)
  await assertStillWorks(t, rig)
})

/** A fresh database, and its URL through a fault proxy that can cut, refuse or stall. */
async function databaseBehindProxy (t: Test): Promise<{ url: string, viaProxy: string, proxy: FaultProxy }> {
  const url = await freshDatabase(t, pgUrl ?? '')
  const proxy = await startFaultProxy(targetOf(`http://${new URL(url).host}`))
  t.teardown(proxy.close)
  const viaProxy = new URL(url)
  viaProxy.host = `127.0.0.1:${proxy.port}`
  return { url, viaProxy: viaProxy.toString(), proxy }
}

t.test('PostgreSQL unreachable at the insert (connections reset, then refused): 503, the object removed', { skip: pgSkip }, async (t) => {
  const { url, viaProxy, proxy } = await databaseBehindProxy(t)
  const rig = await pgRig(t, viaProxy)
  const res = await uploadWithFault(rig, async () => {
    proxy.cut()
    await proxy.stopAccepting()
  })
  t.equal(res?.status, 503)
  t.same(JSON.parse(res?.body ?? '{}'), DATABASE_UNAVAILABLE)
  await assertObjectRemoved(t, rig)
  t.equal(await pgRows(url), 0, 'no row')
  await proxy.startAccepting()
  await assertStillWorks(t, rig)
})

t.test('PostgreSQL that stalls without closing the connection: the client-side timeout ends the query', { skip: pgSkip }, async (t) => {
  const { viaProxy, proxy } = await databaseBehindProxy(t)
  const store = await createPostgresFileStore({ connectionString: viaProxy, statementTimeoutMs: 300 })
  t.teardown(() => store.close())
  await store.migrate()
  await store.check()
  proxy.pause()
  const started = Date.now()
  await t.rejects(store.check(), /timeout/i, 'a stalled server cannot hang a request')
  const waited = Date.now() - started
  // The server never sees the query, so only the client's query_timeout (server timeout + 5 s) can end it.
  t.ok(waited >= 5000 && waited < 9000, `ended by the client after ${waited} ms`)
  proxy.resume()
})
