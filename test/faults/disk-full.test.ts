import { execFile } from 'node:child_process'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import BetterSqlite3 from 'better-sqlite3'
import t from 'tap'
import { KEY_A, listTree } from '../helpers/app.js'
import { startServiceProcess } from '../helpers/process.js'
import { batchFile, batchFileOf } from './helpers/batch.js'
import { multipartBytes, rawUpload } from './helpers/raw-http.js'

/*
 * A real full disk under the real service: `src/server.ts` runs in a user+mount
 * namespace (no root needed on the host) where DATA_DIR is a 2 MiB tmpfs, and a 3 MiB
 * upload fills it. The test looks into that mount through /proc/<pid>/root, the
 * server's own view of the filesystem. The SQLite database lives outside the tmpfs, so
 * the fault is the blob store's alone; a database on the same full disk is not covered.
 */

const run = promisify(execFile)
const noNamespaces = await run('unshare', ['-rm', 'sh', '-c', 'mount -t tmpfs -o size=1m tmpfs "$1"', 'sh', tmpdir()])
  .then(() => false, (err: Error) => `cannot mount a tmpfs in a user namespace here: ${err.message.split('\n')[0]}`)

t.test('a full disk: 507 insufficient_storage, no temp file, no object, no row, and the space is usable again', { skip: noNamespaces }, async (t) => {
  const dir = t.testdir({ data: {}, db: {} })
  const dataDir = path.join(dir, 'data')
  const sqlitePath = path.join(dir, 'db', 'files.db')
  const service = await startServiceProcess(t, {
    API_KEYS: `${KEY_A}=project-a`,
    DATA_DIR: dataDir,
    SQLITE_PATH: sqlitePath,
    RECONCILE_INTERVAL_MS: '0'
  }, { prefix: ['unshare', '-rm', 'sh', '-c', 'mount -t tmpfs -o size=2m tmpfs "$0" && exec "$@"', dataDir] })
  const blobs = `/proc/${service.child.pid ?? 0}/root${dataDir}/blobs`
  t.same(await listTree(blobs), [], 'the server sees an empty tmpfs')

  const big = await multipartBytes([{ name: 'purpose', value: 'batch' }, { name: 'file', filename: 'big.jsonl', content: batchFileOf(3 * 1024 * 1024) }])
  const full = await rawUpload(service.url, KEY_A, big)
  // The server's log says which storage error it was, if not the full disk.
  t.equal(full?.status, 507, full?.status === 507 ? 'the full disk is reported' : `server log: ${service.output().slice(-4000)}`)
  t.same(JSON.parse(full?.body ?? '{}'), {
    error: { message: 'The file storage is full; nothing was stored.', type: 'server_error', param: null, code: 'insufficient_storage' }
  })
  t.same(await listTree(blobs), [], 'the temp file of the failed write is gone')
  const db = new BetterSqlite3(sqlitePath, { readonly: true })
  t.teardown(() => { db.close() })
  const rows = (): unknown => db.prepare('select count(*) as n from files').get()
  t.same(rows(), { n: 0 }, 'no row')

  const content = batchFile(20)
  const fits = await rawUpload(service.url, KEY_A, await multipartBytes([{ name: 'purpose', value: 'batch' }, { name: 'file', filename: 'small.jsonl', content }]))
  t.equal(fits?.status, 200, 'the freed space takes the next upload')
  const id = (JSON.parse(fits?.body ?? '{}') as { id?: string }).id ?? ''
  t.same(rows(), { n: 1 })
  const key = (db.prepare('select storage_key from files where id = ?').get(id) as { storage_key: string } | undefined)?.storage_key
  t.same(await listTree(blobs), [`${key ?? 'no row'}:${content.length}`])
})
