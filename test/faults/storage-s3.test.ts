import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { KEY_A, objectKeyOf, type TestServer } from '../helpers/app.js'
import { startBlackHole, startFaultProxy, targetOf, type FaultProxy } from '../helpers/fault-proxy.js'
import { getJson, postMultipart } from '../helpers/multipart.js'
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js'
import { batchFile, batchFileOf } from './helpers/batch.js'
import { multipartBytes, openRaw, uploadHead, type RawResponse } from './helpers/raw-http.js'
import { PART_BYTES, allRows, bucketView, startS3Service } from './helpers/s3.js'

/*
 * The S3 driver against a real S3 server (versitygw with S3_TEST_ENDPOINT, else s3rver)
 * behind a TCP proxy that crashes, refuses, stalls or slows the connections. s3rver has
 * no ListMultipartUploads: there, that no unfinished multipart upload is left cannot be
 * checked (only that no object is); CI runs these against versitygw.
 */

const UNAVAILABLE = {
  message: 'The file storage is unavailable; nothing was stored. Try again later.',
  type: 'server_error',
  param: null,
  code: 'storage_unavailable'
}
const TIMEOUT = {
  message: 'The file storage did not answer in time; nothing was stored. Try again later.',
  type: 'server_error',
  param: null,
  code: 'storage_timeout'
}

/** One run, which nothing else is holding the lock for in these tests. */
async function reconciled (server: TestServer): Promise<NonNullable<Awaited<ReturnType<TestServer['app']['reconcile']>>>> {
  const result = await server.app.reconcile()
  if (result === null) throw new Error('reconciliation was skipped: lock held')
  return result
}

const small = (): Parameters<typeof postMultipart>[1] => [{ name: 'purpose', value: 'batch' }, { name: 'file', filename: 'small.jsonl', content: batchFile(3) }]

async function withProxy (t: Test): Promise<{ s3: S3TestServer, proxy: FaultProxy }> {
  const s3 = await startS3Server(t)
  const proxy = await startFaultProxy(targetOf(s3.endpoint))
  t.teardown(proxy.close)
  return { s3, proxy }
}

/** Nothing of a failed upload is visible: no row in the database, an empty list. */
async function assertNothingVisible (t: Test, server: TestServer): Promise<void> {
  t.same(await allRows(server), [], 'no row')
  const list = await getJson(`${server.url}/v1/files`, KEY_A)
  t.same(list.json().data, [], 'the list is empty')
}

const NO_LISTING = 's3rver has no ListMultipartUploads: set S3_TEST_ENDPOINT to check unfinished uploads'

async function assertNoUnfinished (t: Test, bucket: ReturnType<typeof bucketView>): Promise<void> {
  const unfinished = await bucket.unfinished()
  if (unfinished === null) t.pass('no unfinished multipart upload', { skip: NO_LISTING })
  else t.same(unfinished, [], 'no unfinished multipart upload')
}

async function until (what: string, ready: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await sleep(10)
  }
}

/**
 * Sends a 12 MiB upload over a raw socket; once more than one part's worth has gone
 * through the proxy to S3 (the multipart upload exists, a part is on its way), runs
 * `inject`, then sends the rest. Resolves with the answer and its time after the fault.
 */
async function uploadBrokenMidway (server: TestServer, proxy: FaultProxy, inject: () => Promise<void>): Promise<{ response: RawResponse | null, ms: number }> {
  const body = await multipartBytes([{ name: 'purpose', value: 'batch' }, { name: 'file', filename: 'big.jsonl', content: batchFileOf(12 * 1024 * 1024) }])
  const connection = await openRaw(server.url)
  await connection.write(uploadHead(KEY_A, body.length))
  let injectedAt = 0
  const sending = (async () => {
    const piece = 256 * 1024
    for (let offset = 0; offset < body.length; offset += piece) {
      if (injectedAt === 0 && offset >= PART_BYTES + 2 * piece) {
        await until('a part is on its way to S3', () => proxy.bytesUp() > PART_BYTES)
        await inject()
        injectedAt = Date.now()
      }
      if (!await connection.write(body.subarray(offset, offset + piece))) return
    }
  })()
  const response = await connection.response()
  connection.socket.destroy()
  await sending
  return { response, ms: Date.now() - injectedAt }
}

t.test('storage down at start-up: the app starts, /ready is 503, uploads 503, and it recovers without a restart', async (t) => {
  const { s3, proxy } = await withProxy(t)
  await proxy.stopAccepting()
  const server = await startS3Service(t, s3, proxy.url)
  const bucket = bucketView(t, s3)

  const ready = await getJson(`${server.url}/ready`)
  t.equal(ready.status, 503)
  t.same(ready.json().checks, { storage: 'failed', database: 'ok' })
  t.match(ready.json().errors.storage, new RegExp(`^S3 bucket "${s3.bucket}" at ${proxy.url} is not reachable: `))

  const bare = await postMultipart(`${server.url}/v1/files`, small(), { key: KEY_A })
  t.equal(bare.status, 503)
  t.same(bare.json(), { error: UNAVAILABLE })
  const wrapped = await postMultipart(`${server.url}/api/v1/files`, small(), { key: KEY_A })
  t.equal(wrapped.status, 503)
  t.same(wrapped.json(), { success: false, code: '503', message: UNAVAILABLE.message, data: { error: UNAVAILABLE } })
  await assertNothingVisible(t, server)

  await proxy.startAccepting()
  t.same(await bucket.objects(), [], 'no object reached the bucket')
  t.equal((await getJson(`${server.url}/ready`)).status, 200, 'ready again once S3 answers')
  const stored = await postMultipart(`${server.url}/v1/files`, small(), { key: KEY_A })
  t.equal(stored.status, 200, stored.body)
  t.same(await bucket.objects(), [`${await objectKeyOf(server.app, stored.json().id as string)}:${batchFile(3).length}`])
})

t.test('a host that never accepts: S3_CONNECT_TIMEOUT_MS ends the wait, 504 storage_timeout', async (t) => {
  const s3 = await startS3Server(t)
  const hole = await startBlackHole()
  t.teardown(hole.close)
  const server = await startS3Service(t, s3, hole.url, { S3_CONNECT_TIMEOUT_MS: '300' })
  const started = Date.now()
  const res = await postMultipart(`${server.url}/v1/files`, small(), { key: KEY_A })
  const ms = Date.now() - started
  t.equal(res.status, 504)
  t.same(res.json(), { error: TIMEOUT })
  // Three attempts of 300 ms plus the SDK's back-off; without the timeout, minutes.
  t.ok(ms >= 900 && ms < 5000, `answered after ${ms} ms`)
  const ready = await getJson(`${server.url}/ready`)
  t.equal(ready.status, 503)
  t.match(ready.json().errors.storage, /is not reachable: TimeoutError/)
  await assertNothingVisible(t, server)
})

t.test('S3 crashes mid-upload (connections reset, then refused): 503; after reconciliation nothing is left', async (t) => {
  const { s3, proxy } = await withProxy(t)
  const server = await startS3Service(t, s3, proxy.url)
  const bucket = bucketView(t, s3)
  const { response, ms } = await uploadBrokenMidway(server, proxy, async () => {
    proxy.cut()
    await proxy.stopAccepting()
  })
  t.equal(response?.status, 503)
  t.same(JSON.parse(response?.body ?? '{}'), { error: UNAVAILABLE })
  t.ok(ms < 5000, `answered ${ms} ms after the crash`)
  await assertNothingVisible(t, server)

  await proxy.startAccepting()
  t.same(await bucket.objects(), [], 'no object')
  const unfinished = await bucket.unfinished()
  if (unfinished === null) t.pass('one multipart upload is left', { skip: NO_LISTING })
  else t.equal(unfinished.length, 1, 'the abort could not reach S3: one multipart upload is left')
  const result = await reconciled(server)
  t.equal(result.incompleteWrites, unfinished === null ? null : 1, 'reconciliation aborts it')
  t.same(result.orphanObjects, [])
  t.same(await bucket.objects(), [], 'still no object')
  await assertNoUnfinished(t, bucket)
  t.equal((await postMultipart(`${server.url}/v1/files`, small(), { key: KEY_A })).status, 200, 'uploads work again')
})

t.test('S3 stalls mid-upload (bytes held, sockets open): S3_REQUEST_TIMEOUT_MS fires, 504; reconciliation leaves nothing', async (t) => {
  const { s3, proxy } = await withProxy(t)
  const server = await startS3Service(t, s3, proxy.url, { S3_REQUEST_TIMEOUT_MS: '300' })
  const bucket = bucketView(t, s3)
  const { response, ms } = await uploadBrokenMidway(server, proxy, async () => { proxy.pause() })
  t.equal(response?.status, 504)
  t.same(JSON.parse(response?.body ?? '{}'), { error: TIMEOUT })
  // The part, lib-storage's abort and the driver's second abort each time out (3 attempts).
  t.ok(ms >= 900 && ms < 15_000, `answered ${ms} ms after the stall`)
  await assertNothingVisible(t, server)

  // The stalled server is restarted: what it held is lost.
  proxy.cut()
  proxy.resume()
  const result = await reconciled(server)
  t.equal(result.incompleteWrites, s3.supports.listMultipartUploads ? 1 : null)
  t.same(await bucket.objects(), [], 'no object')
  await assertNoUnfinished(t, bucket)
})

t.test('S3 slower than the timeout, its writes landing late: 504, invisible, the late object reconciled away', async (t) => {
  const { s3, proxy } = await withProxy(t)
  const server = await startS3Service(t, s3, proxy.url, { S3_REQUEST_TIMEOUT_MS: '400' })
  const bucket = bucketView(t, s3)
  proxy.delay(1200)
  const res = await postMultipart(`${server.url}/v1/files`, small(), { key: KEY_A })
  t.equal(res.status, 504)
  t.same(res.json(), { error: TIMEOUT })
  await proxy.settled()
  proxy.delay(0)
  // S3 got every byte of the PutObject, only too late: the object exists without a row.
  const late = await bucket.objects()
  t.equal(late.length, 1, 'the late write created an object')
  const key = (late[0] ?? '').split(':')[0] ?? ''
  const id = key.split('/').at(-1) ?? ''
  t.equal((await getJson(`${server.url}/v1/files/${id}`, KEY_A)).status, 404, 'which is not visible')
  await assertNothingVisible(t, server)
  // A database without a single file beside an object would be refused as a wrong pairing:
  // one real file makes this what it is, crash debris beside a live deployment.
  t.equal((await postMultipart(`${server.url}/v1/files`, small(), { key: KEY_A })).status, 200)
  const result = await reconciled(server)
  t.same(result.orphanObjects, [key], 'reconciliation removes the orphan')
  t.equal((await bucket.objects()).filter((o) => o.startsWith(key)).length, 0, 'the orphan is gone')
  t.equal((await bucket.objects()).length, 1, 'the real file remains')
})

t.test('S3 slow but within the timeout: the upload and the download succeed', async (t) => {
  const { s3, proxy } = await withProxy(t)
  const server = await startS3Service(t, s3, proxy.url, { S3_REQUEST_TIMEOUT_MS: '2000' })
  proxy.delay(150)
  const content = batchFile(50)
  const res = await postMultipart(`${server.url}/v1/files`, [{ name: 'purpose', value: 'batch' }, { name: 'file', filename: 'slow.jsonl', content }], { key: KEY_A })
  t.equal(res.status, 200, res.body)
  const download = await fetch(`${server.url}/v1/files/${res.json().id as string}/content`, { headers: { authorization: `Bearer ${KEY_A}` } })
  t.equal(download.status, 200)
  t.same(Buffer.from(await download.arrayBuffer()), content, 'byte-exact through the slow link')
})
