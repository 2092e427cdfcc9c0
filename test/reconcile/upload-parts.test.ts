import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import type { ChildProcess } from 'node:child_process'
import path from 'node:path'
import { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import { createSqliteFileStore } from '../../src/metadata/sqlite-file-store.js'
import { reconcile } from '../../src/reconcile/reconcile.js'
import { createFsBlobStore } from '../../src/storage/fs-blob-store.js'
import { createS3BlobStore } from '../../src/storage/s3-blob-store.js'
import type { BlobStore } from '../../src/storage/blob-store.js'
import { uploadPartKey } from '../../src/ids.js'
import { listBlobs } from '../helpers/app.js'
import { BOUNDARY, postMultipart } from '../helpers/multipart.js'
import { killMidRequest, startServiceProcess } from '../helpers/process.js'
import { bucketClient, serviceEnv, startS3Server } from '../helpers/s3-server.js'

const KEY = 'sk-upload-crash-key-0123456789'
const MiB = 1024 * 1024
const silent = { info: () => {}, warn: () => {}, error: () => {} }

async function createUpload (url: string, bytes: number): Promise<string> {
  const res = await fetch(`${url}/v1/uploads`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ filename: 'big.bin', purpose: 'user_data', bytes, mime_type: 'application/octet-stream' })
  })
  return (await res.json() as { id: string }).id
}

/** Streams a part until `killAfter` bytes went out, then SIGKILLs the server. */
async function killMidPart (url: string, uploadId: string, child: ChildProcess, killAfter: number): Promise<void> {
  await killMidRequest(child, {
    url: `${url}/v1/uploads/${uploadId}/parts`,
    key: KEY,
    boundary: BOUNDARY,
    head: `--${BOUNDARY}\r\nContent-Disposition: form-data; name="data"; filename="blob"\r\n\r\n`,
    chunk: Buffer.alloc(256 * 1024, 7),
    killAfter
  })
}

/** Reconciliation as the next replica would run it, two hours on: the upload's hour is long over. */
async function reconcileLater (t: Test, dataDir: string, blobStore: BlobStore) {
  const fileStore = await createSqliteFileStore({ filename: path.join(dataDir, 'files.db') })
  t.teardown(() => fileStore.close())
  return await reconcile({ fileStore, blobStore, now: () => Date.now() + 2 * 3600 * 1000, graceMs: 1000, maxRemovals: 100, log: silent })
}

t.test('fs: SIGKILL mid-part, then reconciliation: no part and no temp file left', async (t) => {
  const dataDir = t.testdir({})
  const server = await startServiceProcess(t, { DATA_DIR: dataDir, API_KEYS: KEY, RECONCILE_INTERVAL_MS: '0', EXPIRY_SWEEP_INTERVAL_MS: '0' })
  const uploadId = await createUpload(server.url, 64 * MiB)
  const first = await postMultipart(`${server.url}/v1/uploads/${uploadId}/parts`, [{ name: 'data', filename: 'blob', content: Buffer.alloc(MiB, 1) }], { key: KEY })
  t.equal(first.status, 200, first.body)
  await killMidPart(server.url, uploadId, server.child, 24 * MiB)
  const left = await listBlobs(dataDir)
  t.equal(left.filter((b) => b.startsWith('.tmp/')).length, 1, 'the killed part left its temp file')
  t.same(left.filter((b) => b.startsWith('files/upload-parts/')).length, 1, 'and the stored part its object')

  const result = await reconcileLater(t, dataDir, await createFsBlobStore({ root: path.join(dataDir, 'blobs') }))
  t.match(result, { refused: null, staleUploadParts: 1, incompleteWrites: 1, orphanObjects: [] })
  t.same(await listBlobs(dataDir), [], 'nothing left')
})

// s3rver (used when S3_TEST_ENDPOINT is unset) cannot list multipart uploads.
const noListing = (process.env.S3_TEST_ENDPOINT ?? '') === '' ? 's3rver cannot list unfinished multipart uploads; CI runs a real S3 server' : false
t.test('s3: SIGKILL mid-part, then reconciliation: no part and no unfinished multipart upload left', { skip: noListing }, async (t) => {
  const s3 = await startS3Server(t)
  const dataDir = t.testdir({})
  const server = await startServiceProcess(t, { ...serviceEnv(s3), DATA_DIR: dataDir, API_KEYS: KEY, RECONCILE_INTERVAL_MS: '0', EXPIRY_SWEEP_INTERVAL_MS: '0' })
  const client = bucketClient(s3, t)
  const objects = async () => ((await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'files/upload-parts/' }))).Contents ?? []).map((o) => o.Key)
  const unfinished = async () => ((await client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket }))).Uploads ?? []).map((u) => u.Key)
  const uploadId = await createUpload(server.url, 64 * MiB)
  const first = await postMultipart(`${server.url}/v1/uploads/${uploadId}/parts`, [{ name: 'data', filename: 'blob', content: Buffer.alloc(MiB, 1) }], { key: KEY })
  t.equal(first.status, 200, first.body)
  // Past the driver's 8 MiB part: the killed part was a multipart put.
  await killMidPart(server.url, uploadId, server.child, 24 * MiB)
  t.equal((await objects()).length, 1, 'the stored part\'s object')
  t.equal((await unfinished()).length, 1, 'the killed part\'s multipart upload')

  const result = await reconcileLater(t, dataDir, createS3BlobStore({ endpoint: s3.endpoint, region: s3.region, bucket: s3.bucket, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, forcePathStyle: true }))
  t.match(result, { refused: null, staleUploadParts: 1, incompleteWrites: 1 })
  t.same(await objects(), [], 'no part object')
  t.same(await unfinished(), [], 'no unfinished multipart upload')
})

t.test('reconciliation removes a part without a row, and keeps parts of uploads the database does not know', async (t) => {
  const dataDir = t.testdir({})
  const blobStore = await createFsBlobStore({ root: path.join(dataDir, 'blobs') })
  const fileStore = await createSqliteFileStore({ filename: path.join(dataDir, 'files.db') })
  t.teardown(() => fileStore.close())
  await fileStore.migrate()
  const createdAt = Math.floor(Date.now() / 1000)
  const known = 'upload_01J9Z3N4Q8X7V6T5R4P3M2K1H0'
  // Still pending and within its hour: only a part without a row (a crash between its
  // put and its row) is debris.
  await fileStore.uploadDb.insertInto('uploads').values({ id: known, project: 'p', filename: 'f', purpose: 'user_data', bytes: 2, mime_type: 'x', status: 'pending', created_at: createdAt + 7200, expires_at: createdAt + 7200 + 3600 }).execute()
  const rowless = uploadPartKey(known, 'part_01J9Z3N4Q8X7V6T5R4P3M2K1H1')
  const foreign = uploadPartKey('upload_01J9Z3N4Q8X7V6T5R4P3M2K1H2', 'part_01J9Z3N4Q8X7V6T5R4P3M2K1H3')
  for (const key of [rowless, foreign]) await blobStore.put(key, Readable.from([Buffer.from('ab')]))
  const result = await reconcile({ fileStore, blobStore, now: () => Date.now() + 2 * 3600 * 1000, graceMs: 1000, maxRemovals: 100, log: silent })
  t.match(result, { refused: null, staleUploadParts: 1 })
  t.same((await listBlobs(dataDir)).sort(), [`${foreign}:2`], 'the unknown upload\'s part is kept')
})

t.test('files of projects named upload-parts or batch-parts are neither orphans nor dangling rows', async (t) => {
  const dataDir = t.testdir({})
  const blobStore = await createFsBlobStore({ root: path.join(dataDir, 'blobs') })
  const fileStore = await createSqliteFileStore({ filename: path.join(dataDir, 'files.db') })
  t.teardown(() => fileStore.close())
  await fileStore.migrate()
  const old = Math.floor(Date.now() / 1000) - 100
  const keys = ['files/upload-parts/upload-01J9Z3N4Q8X7V6T5R4P3M2K1H0', 'files/batch-parts/upload-01J9Z3N4Q8X7V6T5R4P3M2K1H1', 'files/p/upload-01J9Z3N4Q8X7V6T5R4P3M2K1H2']
  for (const [i, storageKey] of keys.entries()) {
    await blobStore.put(storageKey, Readable.from([Buffer.from('ab')]))
    await fileStore.insert({ id: `file-01J9Z3N4Q8X7V6T5R4P3M2K1H${i}`, project: storageKey.split('/')[1] ?? '', filename: 'f', purpose: 'user_data', bytes: 2, createdAt: old, expiresAt: null, requestCount: null, sha256: 'x', storageKey, warnings: [] })
  }
  const result = await reconcile({ fileStore, blobStore, now: () => Date.now() + 2 * 3600 * 1000, graceMs: 1000, maxRemovals: 100, log: silent })
  t.match(result, { refused: null, matched: 1 })
  t.same([result.orphanObjects, result.danglingRows], [[], []], 'no orphan, no dangling row')
  t.equal((await fileStore.scan(undefined, 10)).length, 3, 'every row kept')
  t.equal((await listBlobs(dataDir)).length, 3, 'every object kept')
})
