import { utimes, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import t from 'tap'
import type { FileRecord } from '../../src/metadata/file-store.js'
import { reconcile } from '../../src/reconcile/reconcile.js'
import { KEY_A, listBlobs, objectKeyOf, startServer } from '../helpers/app.js'
import { postMultipart } from '../helpers/multipart.js'

const silent = { info: () => {}, warn: () => {}, error: () => {} }

t.test('reconcile removes orphan objects, dangling rows and stale temp files, and nothing else', async (t) => {
  const server = await startServer(t, { RECONCILE_INTERVAL_MS: '0' })
  const { blobStore, fileStore } = server.app
  const res = await postMultipart(`${server.url}/v1/files`, [{ name: 'file', filename: 'a.bin', content: Buffer.from('kept') }, { name: 'purpose', value: 'user_data' }], { key: KEY_A })
  const kept = res.json().id as string

  const orphanKey = 'files/project-a/file-01J0000000000000000000ORPH'
  await blobStore.put(orphanKey, Readable.from([Buffer.from('orphan')]))
  // A batch's result part: no row names it, and it is the batch engine's, not an orphan.
  const partKey = 'files/batch-parts/batch_1/0000000000-1.output.jsonl'
  await blobStore.put(partKey, Readable.from([Buffer.from('{}\n')]))
  const dangling: FileRecord = {
    id: 'file-01J000000000000000000DANG', project: 'project-b', filename: 'gone.jsonl', purpose: 'batch', bytes: 3,
    createdAt: 1, expiresAt: null, requestCount: 1, sha256: 'f'.repeat(64), storageKey: 'files/project-b/file-01J000000000000000000DANG', warnings: []
  }
  await fileStore.insert(dangling)
  const temp = path.join(server.dataDir, 'blobs', '.tmp', 'crashed-upload')
  await writeFile(temp, 'half')
  const past = new Date(Date.now() - 2 * 3600 * 1000)
  await utimes(temp, past, past)

  const before = await listBlobs(server.dataDir)
  const dry = await reconcile({ fileStore, blobStore, now: () => Date.now() + 1000, graceMs: 0, maxRemovals: 100, dryRun: true, log: silent })
  t.same(dry.orphanObjects, [orphanKey])
  t.same(dry.danglingRows, [dangling.id])
  t.same(await listBlobs(server.dataDir), before, 'a dry run changes nothing')

  const young = await reconcile({ fileStore, blobStore, now: Date.now, graceMs: 3600 * 1000, maxRemovals: 100, log: silent })
  t.same({ orphans: young.orphanObjects, rows: young.danglingRows }, { orphans: [], rows: [dangling.id] },
    'within the grace period objects are left alone (the dangling row is from 1970, so old enough)')
  t.equal(young.incompleteWrites, 1, 'the two-hour-old temp file is removed')

  await fileStore.insert(dangling)
  const result = await reconcile({ fileStore, blobStore, now: () => Date.now() + 1000, graceMs: 0, maxRemovals: 100, log: silent })
  t.same(result.orphanObjects, [orphanKey])
  t.same(result.danglingRows, [dangling.id])
  t.equal(result.scannedObjects, 2)
  t.same((await listBlobs(server.dataDir)), [`${partKey}:3`, `${await objectKeyOf(server.app, kept)}:4`].sort(), 'only the real file and the batch part remain')
  t.equal(await fileStore.get('project-b', dangling.id, 0), null, 'the dangling row is gone')
  t.same((await fileStore.get('project-a', kept, 0))?.id, kept, 'the real row remains')
  const again = await reconcile({ fileStore, blobStore, now: () => Date.now() + 1000, graceMs: 0, maxRemovals: 100, log: silent })
  t.same({ o: again.orphanObjects, d: again.danglingRows, i: again.incompleteWrites }, { o: [], d: [], i: 0 }, 'idempotent')
})

t.test('start-up reconciliation uses the wall clock: an app clock set ahead does not touch uploads in flight', async (t) => {
  const ahead = Date.now() + 5 * 365 * 24 * 3600 * 1000
  const server = await startServer(t, {}, { now: () => ahead })
  const temp = path.join(server.dataDir, 'blobs', '.tmp', 'upload-in-flight')
  await writeFile(temp, 'half')
  const result = await server.app.reconcile()
  t.equal(result?.incompleteWrites, 0, 'a fresh temp file is within the grace period of the wall clock')
  t.same(await listBlobs(server.dataDir), ['.tmp/upload-in-flight:4'])
})
