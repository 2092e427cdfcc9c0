import { Readable } from 'node:stream'
import t from 'tap'
import type { FileRecord } from '../../src/metadata/file-store.js'
import { createSqliteFileStore } from '../../src/metadata/sqlite-file-store.js'
import { judge, reconcile } from '../../src/reconcile/reconcile.js'
import { ListingOrderError, mergeJoin } from '../../src/reconcile/merge-join.js'
import { createFsBlobStore } from '../../src/storage/fs-blob-store.js'

async function * keyed (keys: string[]): AsyncIterable<{ key: string, value: string }> {
  for (const key of keys) yield { key, value: key }
}

async function collect<T> (source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of source) out.push(item)
  return out
}

t.test('merge join pairs equal keys and yields each one-sided key once, in key order', async (t) => {
  const pairs = await collect(mergeJoin(keyed(['a', 'b/1', 'b/3', 'd']), keyed(['b/1', 'b/2', 'b/3', 'c'])))
  t.same(pairs.map((p) => [p.key, p.object !== undefined, p.row !== undefined]), [
    ['a', true, false], ['b/1', true, true], ['b/2', false, true], ['b/3', true, true], ['c', false, true], ['d', true, false]
  ])
  t.same(await collect(mergeJoin(keyed([]), keyed([]))), [])
  t.same((await collect(mergeJoin(keyed([]), keyed(['x'])))).map((p) => p.key), ['x'])
})

t.test('a listing out of order stops the join instead of inventing orphans', async (t) => {
  await t.rejects(collect(mergeJoin(keyed(['b', 'a']), keyed([]))), ListingOrderError)
  await t.rejects(collect(mergeJoin(keyed([]), keyed(['a', 'a']))), /database listing is not in key order/)
})

t.test('judge: crash debris is repaired; an empty or foreign side, or more than the bound, is refused', async (t) => {
  const base = { orphanObjects: ['o'], danglingRows: [], scannedObjects: 10, scannedRows: 9, matched: 9 }
  t.equal(judge(base, 100), null)
  t.equal(judge({ ...base, orphanObjects: [] }, 100), null, 'nothing to remove, nothing to refuse')
  t.equal(judge({ orphanObjects: [], danglingRows: ['r'], scannedObjects: 0, scannedRows: 1, matched: 0 }, 100)?.reason, 'storage_empty')
  t.equal(judge({ orphanObjects: ['o'], danglingRows: [], scannedObjects: 1, scannedRows: 0, matched: 0 }, 100)?.reason, 'database_empty')
  t.equal(judge({ orphanObjects: ['o'], danglingRows: ['r'], scannedObjects: 1, scannedRows: 1, matched: 0 }, 100)?.reason, 'storage_foreign')
  t.equal(judge({ ...base, orphanObjects: ['o1', 'o2'], danglingRows: ['r'] }, 3), null, 'at the bound')
  t.same(judge({ ...base, orphanObjects: ['o1', 'o2'], danglingRows: ['r', 's'] }, 3),
    { reason: 'too_many_removals', message: 'the run would remove 4 objects and rows, over RECONCILE_MAX_REMOVALS=3' })
})

t.test('a run over the bound removes nothing, lists at most bound + 1, and --yes (confirmed) repairs', async (t) => {
  const dir = t.testdir({})
  const blobStore = await createFsBlobStore({ root: `${dir}/blobs` })
  const fileStore = await createSqliteFileStore({ filename: `${dir}/files.db` })
  t.teardown(() => fileStore.close())
  await fileStore.migrate()
  const row = (id: string): FileRecord => ({ id, project: 'p', filename: 'f', purpose: 'user_data', bytes: 1, createdAt: 1, expiresAt: null, requestCount: null, sha256: '0'.repeat(64), storageKey: `files/p/${id}`, warnings: [] })
  await fileStore.insert(row('file-kept'))
  await blobStore.put('files/p/file-kept', Readable.from([Buffer.from('k')]))
  for (let i = 0; i < 6; i++) await blobStore.put(`files/p/file-orphan-${i}`, Readable.from([Buffer.from('o')]))
  const errors: string[] = []
  const log = { info: () => {}, warn: () => {}, error: (_o: object, msg: string) => { errors.push(msg) } }
  const deps = { fileStore, blobStore, now: () => Date.now() + 1000, graceMs: 0, maxRemovals: 3, log }
  const refused = await reconcile(deps)
  t.equal(refused.refused?.reason, 'too_many_removals')
  t.equal(refused.orphanObjects.length, 4, 'collection stops past the bound')
  t.equal(refused.incompleteWrites, null, 'not even the sweep runs')
  t.equal(errors.length, 1)
  t.equal((await collect(blobStore.list('files/'))).length, 7, 'nothing removed')
  const confirmed = await reconcile({ ...deps, maxRemovals: 100, confirmed: true })
  t.equal(confirmed.orphanObjects.length, 6)
  t.same((await collect(blobStore.list('files/'))).map((b) => b.key), ['files/p/file-kept'])
})
