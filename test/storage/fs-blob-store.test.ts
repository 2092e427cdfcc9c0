import { execFile } from 'node:child_process'
import { readdir, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { StorageFullError } from '../../src/storage/blob-store.js'
import { createFsBlobStore, TEMP_DIR_NAME, toStorageError } from '../../src/storage/fs-blob-store.js'
import { blobStoreContract, patternSlice, patternStream } from './blob-store-contract.js'

const run = promisify(execFile)

async function tempEntries (root: string): Promise<string[]> {
  return await readdir(path.join(root, TEMP_DIR_NAME))
}

t.test('contract', async (t) => {
  const root = path.join(t.testdir(), 'blobs')
  const store = await createFsBlobStore({ root })
  t.teardown(() => store.close())
  t.equal(store.driver, 'fs')
  blobStoreContract(t, {
    store,
    largeBytes: 20 * 1024 * 1024,
    midwayBytes: 5 * 1024 * 1024,
    assertNoLeftovers: async (t) => {
      t.same(await tempEntries(root), [], 'no temp file left in .tmp')
    }
  })
})

t.test('objects live at root/key and nothing escapes the root', async (t) => {
  const dir = t.testdir()
  const root = path.join(dir, 'blobs')
  const store = await createFsBlobStore({ root })
  await store.put('proj/file-1', patternStream('a', 3))
  t.equal((await stat(path.join(root, 'proj', 'file-1'))).size, 3)
  await t.rejects(store.put('.tmp/x', patternStream('a', 1)), /invalid object key/, 'the temp area is not a key')
  await t.rejects(store.put('../outside', patternStream('a', 1)), /invalid object key/)
  t.same((await readdir(dir)).sort(), ['blobs'], 'nothing written beside the root')
  const keys = []
  await writeFile(path.join(root, TEMP_DIR_NAME, 'put-inflight'), 'partial')
  for await (const info of store.list()) keys.push(info.key)
  t.same(keys, ['proj/file-1'], 'list skips temp files')
  const under = async (prefix: string): Promise<string[]> => {
    const found: string[] = []
    for await (const info of store.list(prefix)) found.push(info.key)
    return found
  }
  t.same(await under(`${TEMP_DIR_NAME}/`), [], 'nor can a prefix reach them')
  t.same(await under('proj/fil'), ['proj/file-1'], 'a prefix may end inside a name')
  t.same(await under('nope/'), [], 'a prefix naming no directory lists nothing')
})

t.test('get reads from the opened file even if it is deleted meanwhile', async (t) => {
  const store = await createFsBlobStore({ root: t.testdir() })
  await store.put('k/one', patternStream('held', 300_000))
  const got = await store.get('k/one')
  await store.delete('k/one')
  const chunks: Buffer[] = []
  for await (const chunk of got.body) chunks.push(chunk as Buffer)
  t.equal(got.size, 300_000)
  t.same(Buffer.concat(chunks), patternSlice('held', 0, 299_999))
})

t.test('opening the store removes nothing; abortIncomplete removes temp files older than its cutoff only', async (t) => {
  const root = t.testdir({ [TEMP_DIR_NAME]: { 'put-stale': 'x', 'put-young': 'y', 'put-edge': 'z' } })
  const tmp = path.join(root, TEMP_DIR_NAME)
  const hoursAgo = (h: number): Date => new Date(Date.now() - h * 3600_000)
  await utimes(path.join(tmp, 'put-stale'), hoursAgo(2), hoursAgo(2))
  await utimes(path.join(tmp, 'put-edge'), hoursAgo(0.9), hoursAgo(0.9))
  const store = await createFsBlobStore({ root })
  t.same((await tempEntries(root)).sort(), ['put-edge', 'put-stale', 'put-young'], 'a dry run or RECONCILE_INTERVAL_MS=0 must be able to trust this')
  t.equal(await store.abortIncomplete(hoursAgo(1), 'files/'), 1)
  t.same((await tempEntries(root)).sort(), ['put-edge', 'put-young'])
  t.equal(await store.abortIncomplete(hoursAgo(0.5), 'files/'), 1)
  t.same(await tempEntries(root), ['put-young'], 'a later cutoff removes more')
})

t.test('list yields keys in bytewise order, as S3 does (the merge join needs it)', async (t) => {
  const root = t.testdir({})
  const store = await createFsBlobStore({ root })
  for (const key of ['files/p/x', 'files/p-q/y', 'files/p.r', 'files/pa/z', 'files/P/w']) await store.put(key, Readable.from([Buffer.from('1')]))
  const keys: string[] = []
  for await (const info of store.list('files/')) keys.push(info.key)
  t.same(keys, ['files/P/w', 'files/p-q/y', 'files/p.r', 'files/p/x', 'files/pa/z'])
})

t.test('check() fails when the root is gone', async (t) => {
  const root = path.join(t.testdir(), 'blobs')
  const store = await createFsBlobStore({ root })
  await t.resolves(store.check())
  await rm(root, { recursive: true })
  await t.rejects(store.check(), { message: `blob root ${root} is not writable: ENOENT` })
})

t.test('toStorageError maps a full disk or quota to StorageFullError', async (t) => {
  // Only the mapping: the real-ENOSPC test below proves the driver calls it on write.
  for (const code of ['ENOSPC', 'EDQUOT']) {
    const cause = Object.assign(new Error(`${code}: no space`), { code })
    const mapped = toStorageError(cause)
    t.ok(mapped instanceof StorageFullError, code)
    t.equal((mapped as StorageFullError).cause, cause, `${code} keeps its cause`)
  }
  const other = Object.assign(new Error('EACCES'), { code: 'EACCES' })
  t.equal(toStorageError(other), other, 'other errors pass through unchanged')
})

/**
 * A real full disk: a 1 MiB tmpfs mounted in a user+mount namespace (no root needed on
 * the host). Where namespaces are not allowed (some CI sandboxes) this is skipped and
 * only the mapping test above remains, which cannot prove that put maps a real write
 * failure, nor that the temp file of a failed write is removed on a full device.
 */
const noNamespaces = await run('unshare', ['-rm', 'sh', '-c', 'mount -t tmpfs -o size=1m tmpfs "$1"', 'sh', tmpdir()])
  .then(() => false, (err: Error) => `cannot mount a tmpfs in a user namespace here: ${err.message.split('\n')[0]}`)

t.test('a full disk rejects with StorageFullError and frees the temp file', { skip: noNamespaces }, async (t) => {
  const mountPoint = t.testdir()
  const storeUrl = new URL('../../src/storage/fs-blob-store.ts', import.meta.url).href
  const script = `
    const { Readable } = await import('node:stream')
    const { readdir } = await import('node:fs/promises')
    const { createFsBlobStore } = await import(${JSON.stringify(storeUrl)})
    const root = process.env.FS_ROOT
    const store = await createFsBlobStore({ root })
    const body = Readable.from((function * () { for (let i = 0; i < 32; i++) yield Buffer.alloc(64 * 1024, i) })())
    const err = await store.put('p/big', body).then(() => null, (e) => e)
    const tmp = await readdir(root + '/.tmp')
    const small = await store.put('p/small', Readable.from([Buffer.from('fits')]))
    const head = await store.head('p/big')
    console.log(JSON.stringify({ name: err?.name, cause: err?.cause?.code, tmp, small: small.bytes, head }))
  `
  const root = path.join(mountPoint, 'blobs')
  const projectDir = path.resolve(fileURLToPath(new URL('../..', import.meta.url)))
  const { stdout } = await run('unshare', ['-rm', 'sh', '-c',
    'mount -t tmpfs -o size=1m tmpfs "$1" && exec "$2" --import tsx --input-type=module -e "$3"',
    'sh', mountPoint, process.execPath, script], { cwd: projectDir, env: { ...process.env, FS_ROOT: root } })
  const result: unknown = JSON.parse(stdout.trim().split('\n').at(-1) ?? '')
  t.same(result, { name: 'StorageFullError', cause: 'ENOSPC', tmp: [], small: 4, head: null },
    '2 MiB into 1 MiB: StorageFullError, no temp file, no object, and the space is usable again')
})
