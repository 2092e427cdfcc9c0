import { createCipheriv, createHash, randomBytes } from 'node:crypto'
import { PassThrough, Readable } from 'node:stream'
import type { Test } from 'tap'
import { BlobNotFoundError, type BlobInfo, type BlobStore } from '../../src/storage/blob-store.js'

/** What differs between drivers; the contract itself is the same for all of them. */
export interface ContractHarness {
  store: BlobStore
  /** A body this long must span several parts (S3 multipart) or many writes (fs). */
  largeBytes: number
  /** A failure after this many bytes happens once the driver has stored some of them. */
  midwayBytes: number
  /** Asserts the driver left nothing half-written behind (temp files, multipart uploads). */
  assertNoLeftovers: (t: Test) => Promise<void>
}

const CHUNK = 64 * 1024

/**
 * Deterministic, incompressible bytes: AES-CTR keystream, one distinct 64 KiB chunk per
 * index, so swapped or repeated parts change the digest and any slice can be recomputed.
 */
function patternChunk (seed: string, index: number): Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16)
  const iv = Buffer.alloc(16)
  iv.writeUInt32BE(index, 12)
  return createCipheriv('aes-128-ctr', key, iv).update(Buffer.alloc(CHUNK))
}

export function patternSlice (seed: string, start: number, end: number): Buffer {
  const parts: Buffer[] = []
  for (let i = Math.floor(start / CHUNK); i * CHUNK <= end; i++) {
    const chunk = patternChunk(seed, i)
    parts.push(chunk.subarray(Math.max(0, start - i * CHUNK), Math.min(CHUNK, end - i * CHUNK + 1)))
  }
  return Buffer.concat(parts)
}

/** `size` pattern bytes, then `failure` if given (an error thrown mid-stream). */
export function patternStream (seed: string, size: number, failure?: Error): Readable {
  return Readable.from((async function * () {
    for (let offset = 0; offset < size; offset += CHUNK) {
      yield patternSlice(seed, offset, Math.min(size, offset + CHUNK) - 1)
    }
    if (failure !== undefined) throw failure
  })(), { objectMode: false })
}

export async function patternDigest (seed: string, size: number): Promise<string> {
  return await sha256(patternStream(seed, size))
}

export async function sha256 (body: Readable): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of body) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

async function readAll (body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of body) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

function uniqueKey (name: string): string {
  return `contract/${name}-${randomBytes(4).toString('hex')}`
}

export function blobStoreContract (t: Test, h: ContractHarness): void {
  const { store } = h

  for (const [label, size] of [['empty', 0], ['small', 1000], ['large', h.largeBytes]] as const) {
    t.test(`put then get round-trips a ${label} body byte for byte`, async (t) => {
      const key = uniqueKey(label)
      const seed = `${label}-seed`
      const put = await store.put(key, patternStream(seed, size), { contentType: 'application/jsonl' })
      t.equal(put.bytes, size, 'put counts every byte')
      const got = await store.get(key)
      t.equal(got.size, size)
      t.equal(got.contentLength, size)
      // An exact digest also proves no aws-chunked framing or checksum trailer was stored.
      t.equal(await sha256(got.body), await patternDigest(seed, size), 'sha256 matches')
      const info = await store.head(key)
      t.equal(info?.size, size)
      t.type(put.etag, 'string')
      t.equal(info?.etag, put.etag, 'head reports the etag put returned')
      t.equal(got.etag, put.etag, 'get reports the etag put returned')
      t.ok(info !== null && info.lastModified.getTime() > Date.now() - 60_000, 'lastModified is recent')
    })
  }

  t.test('ranges return exactly the asked bytes', async (t) => {
    const key = uniqueKey('range')
    await store.put(key, patternStream('range', 1000))
    const cases = [[0, 0, 'first byte'], [400, 599, 'middle'], [999, 999, 'last byte'], [0, 999, 'whole']] as const
    for (const [start, end, label] of cases) {
      const got = await store.get(key, { range: { start, end } })
      t.equal(got.size, 1000, `${label}: size is the whole object`)
      t.equal(got.contentLength, end - start + 1, `${label}: contentLength`)
      t.same(await readAll(got.body), patternSlice('range', start, end), `${label}: bytes`)
    }
    await t.rejects(store.get(key, { range: { start: 1000, end: 1001 } }), RangeError, 'a range past the end is refused')
  })

  t.test('a range across a part boundary of a large body is exact', async (t) => {
    const key = uniqueKey('range-large')
    await store.put(key, patternStream('range-large', h.largeBytes))
    const start = h.midwayBytes - 10
    const end = h.midwayBytes + 9
    const got = await store.get(key, { range: { start, end } })
    t.equal(got.size, h.largeBytes)
    t.same(await readAll(got.body), patternSlice('range-large', start, end))
  })

  t.test('putting a key again replaces the object', async (t) => {
    const key = uniqueKey('replace')
    await store.put(key, patternStream('one', 100))
    const second = await store.put(key, patternStream('two', 50))
    const got = await store.get(key)
    t.equal(got.size, 50)
    t.same(await readAll(got.body), patternSlice('two', 0, 49))
    t.equal((await store.head(key))?.etag, second.etag)
  })

  t.test('delete removes the object; deleting a missing one is fine', async (t) => {
    const key = uniqueKey('delete')
    await store.put(key, patternStream('delete', 10))
    await store.delete(key)
    t.equal(await store.head(key), null)
    await t.rejects(store.get(key), BlobNotFoundError)
    await t.resolves(store.delete(key), 'deleting again')
    await t.resolves(store.delete(uniqueKey('never-stored')), 'deleting a key never stored')
    const err = await store.get(uniqueKey('never-stored')).catch((e: unknown) => e)
    t.ok(err instanceof BlobNotFoundError, 'get of a missing key is BlobNotFoundError')
  })

  t.test('list under a prefix returns exactly the keys put there', async (t) => {
    const base = uniqueKey('list')
    const keys = [`${base}/a`, `${base}/b`, `${base}/sub/c`]
    for (const [i, key] of keys.entries()) await store.put(key, patternStream(key, i * 10))
    await store.put(`${base}x/outside`, patternStream('outside', 1))
    const listed: BlobInfo[] = []
    for await (const info of store.list(`${base}/`)) listed.push(info)
    t.same(listed.map((i) => i.key).sort(), keys)
    t.same(listed.map((i) => i.size).sort((a, b) => a - b), [0, 10, 20])
    for (const info of listed) t.equal(info.etag, (await store.head(info.key))?.etag, `etag of ${info.key}`)
    const all: string[] = []
    for await (const info of store.list()) all.push(info.key)
    t.ok(keys.every((k) => all.includes(k)) && all.includes(`${base}x/outside`), 'list() without prefix sees all')
  })

  t.test('a body that fails after its last byte stores nothing', async (t) => {
    const key = uniqueKey('broken')
    const failure = new Error('client went away')
    const err = await store.put(key, patternStream('broken', h.largeBytes, failure)).catch((e: unknown) => e)
    t.equal(err, failure, 'put rejects with the body error')
    t.equal(await store.head(key), null, 'no object')
    await h.assertNoLeftovers(t)
  })

  t.test('a body that fails after more than one part stores nothing', async (t) => {
    const key = uniqueKey('broken-late')
    const err = await store.put(key, patternStream('late', h.midwayBytes + 1024 * 1024, new Error('late')))
      .catch((e: unknown) => e)
    t.match(err, { message: 'late' })
    t.equal(await store.head(key), null, 'no object')
    await h.assertNoLeftovers(t)
  })

  t.test('an abort midway stores nothing and rejects with AbortError', async (t) => {
    const key = uniqueKey('aborted')
    const controller = new AbortController()
    const body = new PassThrough()
    const put = store.put(key, body, { signal: controller.signal })
    // Write past one part: resolved writes mean the driver has pulled those bytes.
    for (let offset = 0; offset < h.midwayBytes + CHUNK; offset += CHUNK) {
      if (!body.write(patternSlice('aborted', offset, offset + CHUNK - 1))) {
        await new Promise((resolve) => body.once('drain', resolve))
      }
    }
    controller.abort()
    const err = await put.catch((e: unknown) => e)
    t.match(err, { name: 'AbortError' })
    t.ok(body.destroyed, 'the body is destroyed')
    t.equal(await store.head(key), null, 'no object')
    await h.assertNoLeftovers(t)
  })

  t.test('an already aborted signal stores nothing', async (t) => {
    const key = uniqueKey('pre-aborted')
    const err = await store.put(key, patternStream('x', 10), { signal: AbortSignal.abort() }).catch((e: unknown) => e)
    t.match(err, { name: 'AbortError' })
    t.equal(await store.head(key), null)
    await h.assertNoLeftovers(t)
  })

  t.test('keys that could escape the store are refused', async (t) => {
    for (const key of ['../x', '/abs', 'a//b', 'a/../b', '', 'a/./b']) {
      await t.rejects(store.put(key, patternStream('x', 1)), /invalid object key/, `put ${JSON.stringify(key)}`)
      await t.rejects(store.get(key), /invalid object key/, `get ${JSON.stringify(key)}`)
      await t.rejects(store.head(key), /invalid object key/, `head ${JSON.stringify(key)}`)
      await t.rejects(store.delete(key), /invalid object key/, `delete ${JSON.stringify(key)}`)
    }
  })

  t.test('check() passes on a usable store', async (t) => {
    await t.resolves(store.check())
  })
}
