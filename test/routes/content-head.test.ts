import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { blobStoreOptions, loadConfig } from '../../src/config.js'
import { createBlobStore } from '../../src/storage/create-blob-store.js'
import { KEY_A, startServer } from '../helpers/app.js'
import { countingBlobStore } from '../helpers/counting-blob-store.js'
import { postMultipart } from '../helpers/multipart.js'
import { serviceEnv, startS3Server } from '../helpers/s3-server.js'

const MiB = 1024 * 1024
const auth = { authorization: `Bearer ${KEY_A}` }

/**
 * HEAD answers from the file's row: a HEAD of a 20 MiB file opens nothing in storage
 * (issue 9: it used to read the whole object, or send a full GetObject on S3).
 */
async function headReadsNothing (t: Test, env: Record<string, string>): Promise<void> {
  // Not t.testdir(): startServer takes that one for its own DATA_DIR.
  const dataDir = await mkdtemp(path.join(tmpdir(), 'content-head-'))
  const { store, counts } = countingBlobStore(await createBlobStore(blobStoreOptions(loadConfig({ DATA_DIR: dataDir, ...env }))))
  // The app does not close a store it was handed.
  t.teardown(async () => {
    await store.close()
    await rm(dataDir, { recursive: true, force: true })
  })
  const server = await startServer(t, env, { blobStore: store })
  const bytes = randomBytes(20 * MiB)
  const up = await postMultipart(`${server.url}/v1/files`, [{ name: 'purpose', value: 'user_data' }, { name: 'file', filename: 'big.bin', content: bytes }], { key: KEY_A })
  t.equal(up.status, 200, up.body)
  const id = up.json().id as string
  const etag = `"${createHash('sha256').update(bytes).digest('hex')}"`

  for (const prefix of ['/v1', '/api/v1']) {
    counts.get = 0
    counts.head = 0
    counts.bytesRead = 0
    const res = await fetch(`${server.url}${prefix}/files/${id}/content`, { method: 'HEAD', headers: auth })
    t.equal(res.status, 200, prefix)
    t.equal(res.headers.get('content-length'), String(20 * MiB), `${prefix}: the whole file's length`)
    t.equal(res.headers.get('etag'), etag)
    t.equal(res.headers.get('content-type'), 'application/octet-stream')
    t.equal(res.headers.get('accept-ranges'), 'bytes')
    t.equal(res.headers.get('cache-control'), 'private, no-cache')
    t.match(res.headers.get('content-disposition') ?? '', /^attachment; filename="big\.bin"/)
    t.equal(res.headers.get('last-modified'), new Date((up.json().created_at as number) * 1000).toUTCString())
    t.equal((await res.arrayBuffer()).byteLength, 0)
    t.same(counts, { get: 0, head: 0, bytesRead: 0 }, `${prefix}: HEAD opened nothing in storage`)
  }
  t.comment(`HEAD of a 20 MiB file on ${store.driver}: ${counts.bytesRead} bytes read, ${counts.get} get, ${counts.head} head`)

  // The counter does count: the same file by GET is read once, whole.
  const got = await fetch(`${server.url}/v1/files/${id}/content`, { headers: auth })
  t.equal(createHash('sha256').update(new Uint8Array(await got.arrayBuffer())).digest('hex'), etag.slice(1, -1))
  t.same(counts, { get: 1, head: 0, bytesRead: 20 * MiB }, 'GET reads the object once')
}

t.test('HEAD reads no byte of the object: fs driver', async (t) => {
  await headReadsNothing(t, {})
})

t.test('HEAD reads no byte of the object: S3 driver', async (t) => {
  const s3 = await startS3Server(t)
  await headReadsNothing(t, serviceEnv(s3))
})
