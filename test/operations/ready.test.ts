import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { startServer } from '../helpers/app.js'
import { getJson } from '../helpers/multipart.js'
import { createFsBlobStore } from '../../src/storage/fs-blob-store.js'
import { createS3BlobStore } from '../../src/storage/s3-blob-store.js'

const SECRET = 'secret-access-key-that-must-not-leak'

t.test('ready: 200 when storage and database answer, without a key', async (t) => {
  const server = await startServer(t)
  const res = await getJson(`${server.url}/ready`)
  t.equal(res.status, 200)
  t.same(res.json(), { status: 'ready', checks: { storage: 'ok', database: 'ok' } })
  const health = await getJson(`${server.url}/health`)
  t.equal(health.status, 200)
  t.same(health.json(), { status: 'ok' })
})

t.test('ready: 503 naming the storage check when the fs root was removed', async (t) => {
  // Not under t.testdir: startServer makes that folder afresh, which would remove the root
  // before start-up writes the deployment marker into it.
  const outside = await mkdtemp(path.join(tmpdir(), 'files-api-ready-'))
  t.teardown(() => rm(outside, { recursive: true, force: true }))
  const root = path.join(outside, 'blobs')
  const blobStore = await createFsBlobStore({ root })
  const server = await startServer(t, {}, { blobStore })
  await rm(root, { recursive: true, force: true })
  const res = await getJson(`${server.url}/ready`)
  t.equal(res.status, 503)
  t.same(res.json(), {
    status: 'not_ready',
    checks: { storage: 'failed', database: 'ok' },
    errors: { storage: `blob root ${root} is not writable: ENOENT` }
  })
  t.equal((await getJson(`${server.url}/health`)).status, 200, 'liveness does not depend on storage')
})

t.test('ready: 503 when S3 is not reachable, with the driver\'s message and no secret', async (t) => {
  const blobStore = createS3BlobStore({
    endpoint: 'http://127.0.0.1:1',
    region: 'us-east-1',
    bucket: 'files',
    accessKeyId: 'AKIDREADYTEST',
    secretAccessKey: SECRET,
    forcePathStyle: true
  })
  t.teardown(() => blobStore.close())
  const server = await startServer(t, {}, { blobStore })
  const res = await getJson(`${server.url}/ready`)
  t.equal(res.status, 503)
  const body = res.json()
  t.same(body.checks, { storage: 'failed', database: 'ok' })
  t.same(Object.keys(body.errors), ['storage'])
  t.match(body.errors.storage, /^S3 bucket "files" at http:\/\/127\.0\.0\.1:1 is not reachable: .+/)
  t.notOk(res.body.includes(SECRET), 'the secret key never reaches the answer')
})

t.test('ready: 503 naming the database check when the database is gone', async (t) => {
  const server = await startServer(t)
  // The very store the app uses, closed under it (close is idempotent, so teardown still works).
  await server.app.fileStore.close()
  const res = await getJson(`${server.url}/ready`)
  t.equal(res.status, 503)
  const body = res.json()
  t.same(body.checks, { storage: 'ok', database: 'failed' })
  t.same(Object.keys(body.errors), ['database'])
  t.type(body.errors.database, 'string')
  t.not(body.errors.database, '')
})

t.test('ready and health are documented, unauthenticated, under operations', async (t) => {
  const server = await startServer(t)
  const spec = (await getJson(`${server.url}/openapi.json`)).json()
  for (const route of ['/health', '/ready', '/metrics']) {
    const op = spec.paths[route]?.get
    t.ok(op, `${route} is documented`)
    t.same(op.tags, ['operations'])
    t.same(op.security, [])
  }
  t.same(Object.keys(spec.paths['/ready'].get.responses).sort(), ['200', '503'])
})
