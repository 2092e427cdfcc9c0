import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand, UploadPartCommand, type S3Client } from '@aws-sdk/client-s3'
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { createSqliteFileStore } from '../../src/metadata/sqlite-file-store.js'
import { DEPLOYMENT_MARKER, listBlobs } from '../helpers/app.js'
import { postMultipart } from '../helpers/multipart.js'
import { startServiceProcess, waitForExit, type ServiceProcess } from '../helpers/process.js'
import { bucketClient, serviceEnv, startS3Server } from '../helpers/s3-server.js'

/**
 * Reconciliation against a wrong pairing, over real service processes: each case removes
 * nothing that is not ours and orphaned (issue 9, item 4). The shortest settings that pass
 * the start-up check (an upload may run 1 s, the grace is 1.5 s) and a wait past the grace
 * make everything old enough to be touched, so only the safety rules stand in the way.
 */
const KEY = 'sk-safety-test-key-0123456789'
const SHORT = { UPLOAD_MAX_DURATION_MS: '1000', RECONCILE_GRACE_MS: '1500' }

async function upload (service: ServiceProcess, name: string): Promise<string> {
  const res = await postMultipart(`${service.url}/v1/files`, [{ name: 'purpose', value: 'user_data' }, { name: 'file', filename: name, content: Buffer.from(`bytes of ${name}`) }], { key: KEY })
  if (res.status !== 200) throw new Error(`upload answered ${res.status}: ${res.body}`)
  return res.json().id as string
}

async function stop (service: ServiceProcess): Promise<void> {
  service.child.kill('SIGTERM')
  await waitForExit(service.child)
}

/** The objects the rows name (object keys carry an upload id, not the file id). */
async function storageKeys (dataDir: string): Promise<string[]> {
  const store = await createSqliteFileStore({ filename: path.join(dataDir, 'files.db') })
  try {
    return (await store.scan(undefined, 1000)).map((row) => row.storageKey).sort()
  } finally {
    await store.close()
  }
}

async function rows (dataDir: string): Promise<string[]> {
  const store = await createSqliteFileStore({ filename: path.join(dataDir, 'files.db') })
  try {
    return (await store.scan(undefined, 1000)).map((row) => `${row.project}/${row.id}`).sort()
  } finally {
    await store.close()
  }
}

/** Forgets the deployment id, as a database from before ids holds none. */
async function forgetDeploymentRow (dataDir: string): Promise<void> {
  const { default: Database } = await import('better-sqlite3')
  const db = new Database(path.join(dataDir, 'files.db'))
  try {
    db.prepare('delete from files_api_deployment').run()
  } finally {
    db.close()
  }
}

/** Waits for the start-up run to finish, as /metrics counts it; returns the metrics text. */
async function afterFirstRun (service: ServiceProcess): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const text = await (await fetch(`${service.url}/metrics`)).text()
    if (/files_api_reconcile_runs_total\{outcome="(repaired|refused)"\} 1/.test(text)) return text
    await sleep(100)
  }
  throw new Error(`no reconciliation run counted: ${service.output()}`)
}

async function twoFiles (t: Test, env: Record<string, string>): Promise<{ ids: string[], keys: string[] }> {
  const first = await startServiceProcess(t, env)
  const ids = [await upload(first, 'a.txt'), await upload(first, 'b.txt')].sort()
  await stop(first)
  await sleep(1600)
  return { ids, keys: await storageKeys(env.DATA_DIR ?? '') }
}

t.test('fs, empty store (an unmounted volume): start-up refuses, naming both; nothing is removed', async (t) => {
  const dataDir = t.testdir({})
  const env = { DATA_DIR: dataDir, API_KEYS: KEY, ...SHORT }
  const { ids } = await twoFiles(t, env)
  await rm(path.join(dataDir, 'blobs'), { recursive: true })
  await t.rejects(startServiceProcess(t, env), /SQLite .*files\.db records deployment [0-9a-f-]{36} but storage .*blobs\/files.* records none, and the database holds files: .*refusing to start/)
  t.same(await rows(dataDir), ids.map((id) => `default/${id}`), 'every row remains')
})

t.test('fs, empty store and a database from before deployment ids: reconciliation refuses, shows it in /ready and /metrics', async (t) => {
  const dataDir = t.testdir({})
  const env = { DATA_DIR: dataDir, API_KEYS: KEY, ...SHORT }
  const { ids } = await twoFiles(t, env)
  await rm(path.join(dataDir, 'blobs'), { recursive: true })
  await forgetDeploymentRow(dataDir)
  const service = await startServiceProcess(t, env)
  const metrics = await afterFirstRun(service)
  // The service's log goes with a failure: which judgement the run made is in it.
  t.match(metrics, /files_api_reconcile_refusals_total\{reason="storage_empty"\} 1/, 'the refusal is counted', { serviceOutput: service.output().slice(-6000) })
  const ready = await fetch(`${service.url}/ready`)
  t.equal(ready.status, 200, 'the replica still serves what it has')
  t.same(await ready.json(), {
    status: 'ready',
    checks: { storage: 'ok', database: 'ok', reconciliation: 'refused' },
    errors: { reconciliation: 'the storage holds no object under the prefix while the database holds 2 files' }
  })
  t.match(service.output(), /reconciliation refused to repair/)
  t.same(await rows(dataDir), ids.map((id) => `default/${id}`), 'every row remains')
})

t.test('fs, empty database beside an existing store: start-up refuses, naming both; every object remains', async (t) => {
  const dataDir = t.testdir({})
  const env = { DATA_DIR: dataDir, API_KEYS: KEY, ...SHORT }
  const { keys } = await twoFiles(t, env)
  for (const name of ['files.db', 'files.db-wal', 'files.db-shm']) await rm(path.join(dataDir, name), { force: true })
  await t.rejects(startServiceProcess(t, env), /storage .*blobs\/files.* records deployment [0-9a-f-]{36} but database SQLite .*files\.db records none, and the storage holds files/)
  t.equal(keys.length, 2)
  t.same(await listBlobs(dataDir), keys.map((key) => `${key}:${'bytes of a.txt'.length}`).sort())
})

interface Bucket { objects: () => Promise<string[]>, uploads: () => Promise<string[]> }

function look (client: S3Client, bucket: string): Bucket {
  return {
    objects: async () => ((await client.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key ?? '').sort(),
    uploads: async () => ((await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).map((u) => u.Key ?? '').sort()
  }
}

async function openUpload (client: S3Client, bucket: string, key: string): Promise<void> {
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))
  await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: Buffer.from('part') }))
}

t.test('s3, foreign bucket (another application\'s objects only): start-up refuses; its objects and our rows remain', async (t) => {
  const ours = await startS3Server(t)
  const foreign = await startS3Server(t)
  if (!foreign.supports.listMultipartUploads) { t.pass('SKIP: s3rver has no ListMultipartUploads', { skip: 'run with S3_TEST_ENDPOINT (a real S3 server)' }); return }
  const client = bucketClient(foreign, t)
  await client.send(new PutObjectCommand({ Bucket: foreign.bucket, Key: 'other/report.csv', Body: 'a,b' }))
  await openUpload(client, foreign.bucket, 'other/big.bin')
  const dataDir = t.testdir({})
  const { ids } = await twoFiles(t, { DATA_DIR: dataDir, API_KEYS: KEY, ...SHORT, ...serviceEnv(ours) })
  await t.rejects(startServiceProcess(t, { DATA_DIR: dataDir, API_KEYS: KEY, ...SHORT, ...serviceEnv(foreign) }),
    new RegExp(`records deployment [0-9a-f-]{36} but storage s3://${foreign.bucket}/files/ at .* records none`))
  const view = look(client, foreign.bucket)
  t.same(await view.objects(), ['other/report.csv'])
  t.same(await view.uploads(), ['other/big.bin'])
  t.same(await rows(dataDir), ids.map((id) => `default/${id}`))
})

t.test('s3, shared bucket: only our orphan and our unfinished upload go; the other application\'s objects and uploads stay', async (t) => {
  const s3 = await startS3Server(t)
  if (!s3.supports.listMultipartUploads) { t.pass('SKIP: s3rver has no ListMultipartUploads', { skip: 'run with S3_TEST_ENDPOINT (a real S3 server)' }); return }
  const client = bucketClient(s3, t)
  const view = look(client, s3.bucket)
  await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'other/report.csv', Body: 'a,b' }))
  await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'files-archive/old.bin', Body: 'x' }))
  await openUpload(client, s3.bucket, 'other/big.bin')
  await openUpload(client, s3.bucket, 'files-archive/big.bin')
  const dataDir = t.testdir({})
  const env = { DATA_DIR: dataDir, API_KEYS: KEY, ...SHORT, ...serviceEnv(s3) }
  const first = await startServiceProcess(t, env)
  const ids = [await upload(first, 'a.txt'), await upload(first, 'b.txt')].sort()
  await stop(first)
  const keys = await storageKeys(dataDir)
  const orphan = 'files/default/file-01J0000000000000000000ORPH'
  await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: orphan, Body: 'orphan' }))
  await openUpload(client, s3.bucket, 'files/default/file-01J00000000000000000000CUT')
  await sleep(1600)

  const second = await startServiceProcess(t, env)
  t.match(await afterFirstRun(second), /files_api_reconcile_runs_total\{outcome="repaired"\} 1/)
  t.same(await view.objects(), ['files-archive/old.bin', DEPLOYMENT_MARKER, ...keys, 'other/report.csv'].sort())
  t.same(await view.uploads(), ['files-archive/big.bin', 'other/big.bin'])
  t.same(await rows(dataDir), ids.map((id) => `default/${id}`))
})
