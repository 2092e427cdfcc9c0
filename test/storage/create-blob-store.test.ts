import { stat } from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import t from 'tap'
import { createBlobStore } from '../../src/storage/create-blob-store.js'

t.test('fs keeps blobs under dataDir/blobs', async (t) => {
  const dataDir = t.testdir()
  const store = await createBlobStore({ driver: 'fs', dataDir, s3: {} })
  t.teardown(() => store.close())
  t.equal(store.driver, 'fs')
  await store.put('p/f', Readable.from([Buffer.from('abc')]))
  t.equal((await stat(path.join(dataDir, 'blobs', 'p', 'f'))).size, 3)
})

t.test('s3 needs a bucket', async (t) => {
  await t.rejects(createBlobStore({ driver: 's3', dataDir: t.testdir(), s3: {} }), /needs a bucket/)
  await t.rejects(createBlobStore({ driver: 's3', dataDir: t.testdir(), s3: { bucket: '' } }), /needs a bucket/)
  const store = await createBlobStore({ driver: 's3', dataDir: t.testdir(), s3: { bucket: 'b', endpoint: 'http://127.0.0.1:9' } })
  t.equal(store.driver, 's3')
  await store.close()
})
