import type { Test } from 'tap'
import { monotonicFactory } from 'ulid'
import type { FileRecord, FileStore, ListFilesQuery } from '../../src/metadata/file-store.js'

/**
 * The behaviour every FileStore must show, run by each store's test file (SQLite now,
 * PostgreSQL later) so both answer the very same questions.
 *
 * `makeStore` returns a new store and registers its own teardown (close, drop the
 * database...) on the `t` it is given. The contract calls `migrate()` itself. Every
 * subtest uses its own project names, so a store backed by a shared database works.
 */
export type MakeFileStore = (t: Test) => Promise<FileStore>

const NOW = 1_750_000_000
const BASE_MS = NOW * 1000

function makeRecord (id: string, project: string, overrides: Partial<FileRecord> = {}): FileRecord {
  return {
    id,
    project,
    filename: `${id}.jsonl`,
    purpose: 'batch',
    bytes: 1234,
    createdAt: NOW - 60,
    expiresAt: null,
    requestCount: 2,
    sha256: 'a'.repeat(64),
    storageKey: `files/${project}/${id}`,
    warnings: [],
    ...overrides
  }
}

/** `count` ids, `perMs` of them sharing each millisecond, in generation order. */
function makeIds (count: number, perMs: number): string[] {
  const ulid = monotonicFactory()
  return Array.from({ length: count }, (_, i) => `file-${ulid(BASE_MS + Math.floor(i / perMs))}`)
}

/** A fixed permutation (7 is coprime with 25), so insertion order is not id order. */
function scrambled<T> (items: T[]): T[] {
  return items.map((_, i) => items[(i * 7) % items.length] as T)
}

function chunk<T> (items: T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

interface PageSummary { ids: string[], hasMore: boolean }

/** Follows hasMore from the first page to the last, as a client would. */
async function pageThrough (store: FileStore, query: Omit<ListFilesQuery, 'after'>): Promise<PageSummary[]> {
  const pages: PageSummary[] = []
  let after: string | undefined
  for (let guard = 0; guard < 100; guard++) {
    const page = await store.list({ ...query, ...(after === undefined ? {} : { after }) })
    const ids = page.files.map((f) => f.id)
    pages.push({ ids, hasMore: page.hasMore })
    if (!page.hasMore) return pages
    after = ids.at(-1)
  }
  throw new Error('list never reported the last page')
}

function expectedPages (ids: string[], limit: number): PageSummary[] {
  const chunks = chunk(ids, limit)
  return chunks.map((c, i) => ({ ids: c, hasMore: i < chunks.length - 1 }))
}

export function runFileStoreContract (t: Test, name: string, makeStore: MakeFileStore): void {
  const run = monotonicFactory()().toLowerCase()
  let projects = 0
  const project = (label: string): string => `${label}-${run}-${++projects}`

  async function freshStore (t: Test): Promise<FileStore> {
    const store = await makeStore(t)
    await store.migrate()
    return store
  }

  t.test(name, async (t) => {
    t.test('insert then get returns the whole record', async (t) => {
      const store = await freshStore(t)
      const p = project('p')
      const [idFull, idBare] = makeIds(2, 1) as [string, string]
      const full = makeRecord(idFull, p, {
        filename: 'requests.jsonl',
        purpose: 'batch',
        // Beyond 2^32: bytes is bigint on every dialect.
        bytes: 5_368_709_120,
        createdAt: NOW,
        expiresAt: NOW + 86_400,
        requestCount: 3,
        sha256: '0123456789abcdef'.repeat(4),
        storageKey: `files/${p}/${idFull}`,
        warnings: [
          { code: 'model_mismatch', message: 'Line 2 uses model gpt-4o.', param: 'body.model', line: 2 },
          { code: 'file_note', message: 'About the whole file.', param: null, line: null }
        ]
      })
      const bare = makeRecord(idBare, p, { purpose: 'user_data', expiresAt: null, requestCount: null, warnings: [] })
      await store.insert(full)
      await store.insert(bare)
      t.strictSame(await store.get(p, idFull, NOW), full)
      t.strictSame(await store.get(p, idBare, NOW), bare)
      t.equal(await store.get(p, 'file-00000000000000000000000000', NOW), null, 'missing id')
    })

    t.test('get is scoped to the project', async (t) => {
      const store = await freshStore(t)
      const [a, b] = [project('a'), project('b')]
      const [id] = makeIds(1, 1) as [string]
      const record = makeRecord(id, a)
      await store.insert(record)
      t.equal(await store.get(b, id, NOW), null)
      t.strictSame(await store.get(a, id, NOW), record)
    })

    t.test('get leaves out a file once expires_at <= now', async (t) => {
      const store = await freshStore(t)
      const p = project('p')
      const [id] = makeIds(1, 1) as [string]
      const record = makeRecord(id, p, { expiresAt: NOW })
      await store.insert(record)
      t.strictSame(await store.get(p, id, NOW - 1), record, 'one second before')
      t.equal(await store.get(p, id, NOW), null, 'at expires_at')
      t.equal(await store.get(p, id, NOW + 1), null, 'after expires_at')
    })

    for (const [label, perMs] of [['within one millisecond', 25], ['across milliseconds', 5]] as const) {
      t.test(`list pages through 25 files ${label}`, async (t) => {
        const store = await freshStore(t)
        const p = project('p')
        const ids = makeIds(25, perMs)
        const timestamps = new Set(ids.map((id) => id.slice(5, 15)))
        t.equal(timestamps.size, 25 / perMs, 'ids share milliseconds as intended')
        t.strictSame([...ids].sort(), ids, 'monotonic ids sort in generation order')
        const records = ids.map((id) => makeRecord(id, p))
        for (const r of scrambled(records)) await store.insert(r)

        const reversed = [...ids].reverse()
        for (const limit of [1, 5, 7, 24, 25, 26]) {
          t.strictSame(await pageThrough(store, { project: p, limit, order: 'asc', now: NOW }),
            expectedPages(ids, limit), `asc, limit ${limit}`)
          t.strictSame(await pageThrough(store, { project: p, limit, order: 'desc', now: NOW }),
            expectedPages(reversed, limit), `desc, limit ${limit}`)
        }

        const first = await store.list({ project: p, limit: 3, order: 'asc', now: NOW })
        t.strictSame(first, { files: records.slice(0, 3), hasMore: true }, 'pages hold whole records')
      })
    }

    t.test('list continues after a cursor whose file was deleted', async (t) => {
      const store = await freshStore(t)
      const p = project('p')
      const ids = makeIds(12, 3)
      for (const id of ids) await store.insert(makeRecord(id, p))

      const asc1 = await store.list({ project: p, limit: 5, order: 'asc', now: NOW })
      const ascCursor = asc1.files.at(-1)?.id
      t.equal(ascCursor, ids[4])
      t.ok(await store.delete(p, ids[4] as string))
      const asc2 = await store.list({ project: p, limit: 5, order: 'asc', now: NOW, after: ids[4] as string })
      t.strictSame(asc2.files.map((f) => f.id), ids.slice(5, 10))
      t.equal(asc2.hasMore, true)

      const desc1 = await store.list({ project: p, limit: 3, order: 'desc', now: NOW })
      t.strictSame(desc1.files.map((f) => f.id), [ids[11], ids[10], ids[9]])
      t.ok(await store.delete(p, ids[9] as string))
      const desc2 = await store.list({ project: p, limit: 3, order: 'desc', now: NOW, after: ids[9] as string })
      // ids[4] was deleted above.
      t.strictSame(desc2.files.map((f) => f.id), [ids[8], ids[7], ids[6]])
      t.equal(desc2.hasMore, true)
      const desc3 = await store.list({ project: p, limit: 6, order: 'desc', now: NOW, after: ids[6] as string })
      t.strictSame(desc3.files.map((f) => f.id), [ids[5], ids[3], ids[2], ids[1], ids[0]])
      t.equal(desc3.hasMore, false)
    })

    t.test('list filters by purpose', async (t) => {
      const store = await freshStore(t)
      const p = project('p')
      const ids = makeIds(12, 2)
      const purposes = ['batch', 'fine-tune', 'batch', 'assistants'] as const
      const records = ids.map((id, i) => makeRecord(id, p, { purpose: purposes[i % 4] }))
      for (const r of records) await store.insert(r)
      const batchIds = records.filter((r) => r.purpose === 'batch').map((r) => r.id)
      t.equal(batchIds.length, 6)

      // The newest file is not a batch file: hasMore must not count it.
      t.strictSame(await store.list({ project: p, purpose: 'batch', limit: 6, order: 'asc', now: NOW }),
        { files: records.filter((r) => r.purpose === 'batch'), hasMore: false })
      t.strictSame(await pageThrough(store, { project: p, purpose: 'batch', limit: 4, order: 'asc', now: NOW }),
        expectedPages(batchIds, 4))
      t.strictSame(await pageThrough(store, { project: p, purpose: 'batch', limit: 4, order: 'desc', now: NOW }),
        expectedPages([...batchIds].reverse(), 4))
      t.strictSame(await pageThrough(store, { project: p, purpose: 'fine-tune', limit: 2, order: 'asc', now: NOW }),
        expectedPages([ids[1], ids[5], ids[9]] as string[], 2))
      t.strictSame(await store.list({ project: p, purpose: 'vision', limit: 10, order: 'asc', now: NOW }),
        { files: [], hasMore: false })
      t.strictSame(await pageThrough(store, { project: p, limit: 100, order: 'asc', now: NOW }),
        [{ ids, hasMore: false }], 'no purpose: every file')
    })

    t.test('list is scoped to the project', async (t) => {
      const store = await freshStore(t)
      const [a, b, c] = [project('a'), project('b'), project('c')]
      const ids = makeIds(5, 1)
      const owners = [a, b, a, b, a]
      for (const [i, id] of ids.entries()) await store.insert(makeRecord(id, owners[i] as string))
      t.strictSame(await pageThrough(store, { project: a, limit: 2, order: 'asc', now: NOW }),
        expectedPages([ids[0], ids[2], ids[4]] as string[], 2))
      t.strictSame(await pageThrough(store, { project: b, limit: 10, order: 'desc', now: NOW }),
        [{ ids: [ids[3], ids[1]], hasMore: false }])
      t.strictSame(await store.list({ project: c, limit: 10, order: 'asc', now: NOW }), { files: [], hasMore: false })
    })

    t.test('list leaves out expired files', async (t) => {
      const store = await freshStore(t)
      const p = project('p')
      const ids = makeIds(5, 1)
      const expiries = [null, NOW, NOW + 100, NOW - 10, NOW]
      for (const [i, id] of ids.entries()) await store.insert(makeRecord(id, p, { expiresAt: expiries[i] ?? null }))

      t.strictSame(await pageThrough(store, { project: p, limit: 10, order: 'asc', now: NOW }),
        [{ ids: [ids[0], ids[2]], hasMore: false }])
      // Only expired rows lie beyond this page: hasMore must be false.
      t.strictSame(await store.list({ project: p, limit: 2, order: 'asc', now: NOW }).then((pg) => pg.hasMore), false)
      t.strictSame(await pageThrough(store, { project: p, limit: 1, order: 'desc', now: NOW }),
        [{ ids: [ids[2]], hasMore: true }, { ids: [ids[0]], hasMore: false }])
      t.strictSame(await pageThrough(store, { project: p, limit: 10, order: 'asc', now: NOW - 20 }),
        [{ ids, hasMore: false }], 'before any expiry every file is listed')
    })

    t.test('list rejects a limit below 1', async (t) => {
      const store = await freshStore(t)
      const p = project('p')
      await t.rejects(store.list({ project: p, limit: 0, order: 'asc', now: NOW }), RangeError)
      await t.rejects(store.list({ project: p, limit: 1.5, order: 'asc', now: NOW }), RangeError)
    })

    t.test('delete returns the record once, then it is gone', async (t) => {
      const store = await freshStore(t)
      const [a, b] = [project('a'), project('b')]
      const [id, other] = makeIds(2, 1) as [string, string]
      const record = makeRecord(id, a, {
        expiresAt: NOW + 5,
        warnings: [{ code: 'w', message: 'm', param: null, line: 1 }]
      })
      await store.insert(record)
      await store.insert(makeRecord(other, a))

      t.equal(await store.delete(b, id), null, 'another project cannot delete it')
      t.strictSame(await store.get(a, id, NOW), record, 'still there for its owner')
      t.strictSame(await store.delete(a, id), record)
      t.equal(await store.delete(a, id), null, 'second delete')
      t.equal(await store.get(a, id, NOW), null)
      t.strictSame((await store.list({ project: a, limit: 10, order: 'asc', now: NOW })).files.map((f) => f.id), [other])
    })

    // Expiry times far before NOW, so rows of other subtests sharing a database are never swept here.
    t.test('deleteExpired removes expired rows of every project, earliest first, each once', async (t) => {
      const store = await freshStore(t)
      const [a, b] = [project('a'), project('b')]
      const ids = makeIds(7, 1)
      const expiries = [1003, 1000, 1002, 1001, 1004, 5000, null]
      const records = ids.map((id, i) => makeRecord(id, i % 2 === 0 ? a : b, { expiresAt: expiries[i] ?? null }))
      for (const record of records) await store.insert(record)

      const first = await store.deleteExpired(1003, 2)
      t.strictSame(first.map((r) => r.id), [ids[1], ids[3]], 'the two that expired first')
      t.strictSame(first[0], records[1], 'whole records are returned')
      const second = await store.deleteExpired(1003, 10)
      t.strictSame(second.map((r) => r.id).sort(), [ids[0], ids[2]].sort())
      t.strictSame(await store.deleteExpired(1003, 10), [], 'nothing twice')
      t.strictSame(await store.get(a, ids[4] as string, 0), records[4], 'not yet expired at 1003: kept')
      t.strictSame(await store.get(b, ids[5] as string, 0), records[5])
      t.strictSame(await store.get(a, ids[6] as string, 0), records[6], 'never expires: kept')
    })

    t.test('concurrent deleteExpired calls return disjoint sets that cover every expired row', async (t) => {
      const store = await freshStore(t)
      const p = project('p')
      const ids = makeIds(40, 3)
      for (const id of ids) await store.insert(makeRecord(id, p, { expiresAt: 2000 }))
      const sweeps = await Promise.all([0, 1, 2, 3].map(async () => {
        const got: string[] = []
        for (let batch = await store.deleteExpired(2000, 7); batch.length > 0; batch = await store.deleteExpired(2000, 7)) {
          got.push(...batch.map((r) => r.id))
        }
        return got
      }))
      const all = sweeps.flat()
      t.equal(all.length, ids.length, 'no row returned twice')
      t.strictSame([...all].sort(), [...ids].sort(), 'every row returned once')
    })

    t.test('scan walks every row of every project in id order; existingKeys finds rows by object key', async (t) => {
      const store = await freshStore(t)
      const [a, b] = [project('a'), project('b')]
      const ids = makeIds(5, 2)
      const records = ids.map((id, i) => makeRecord(id, i % 2 === 0 ? a : b, { expiresAt: i === 3 ? 1 : null }))
      for (const record of scrambled(records)) await store.insert(record)
      // Other subtests may share the database: look only at this subtest's rows.
      const mine = new Set(ids)
      const seen: FileRecord[] = []
      let after: string | undefined
      for (let page = await store.scan(after, 2); page.length > 0; page = await store.scan(after, 2)) {
        seen.push(...page.filter((r) => mine.has(r.id)))
        after = page.at(-1)?.id
      }
      t.strictSame(seen, records, 'every row once, expired ones included, in id order')
      const keys = records.map((r) => r.storageKey)
      const found = await store.existingKeys([...keys.slice(1, 4), 'files/nobody/file-none'])
      t.strictSame([...found].sort(), keys.slice(1, 4).sort())
      t.strictSame(await store.existingKeys([]), new Set())
    })

    t.test('migrate is harmless when run again', async (t) => {
      const store = await freshStore(t)
      const p = project('p')
      const [first, second] = makeIds(2, 1) as [string, string]
      const record = makeRecord(first, p)
      await store.insert(record)
      await store.migrate()
      await store.migrate()
      t.strictSame(await store.get(p, first, NOW), record)
      await store.insert(makeRecord(second, p))
      t.equal((await store.list({ project: p, limit: 10, order: 'asc', now: NOW })).files.length, 2)
    })

    t.test('inserting an existing id rejects and keeps the original', async (t) => {
      const store = await freshStore(t)
      const [a, b] = [project('a'), project('b')]
      const [id] = makeIds(1, 1) as [string]
      const record = makeRecord(id, a)
      await store.insert(record)
      await t.rejects(store.insert({ ...record, filename: 'other.jsonl' }))
      await t.rejects(store.insert(makeRecord(id, b)), 'ids are unique across projects')
      t.strictSame(await store.get(a, id, NOW), record)
      t.equal(await store.get(b, id, NOW), null)
    })

    t.test('insertNext mints each id above every id already stored, and keeps the record', async (t) => {
      const store = await freshStore(t)
      const p = project('next')
      // A row whose id lies an hour ahead of the clock (another replica's fast clock, a
      // copied deployment): later ids must still sort after it.
      const ahead = `file-${monotonicFactory()(Date.now() + 3600_000)}`
      await store.insert(makeRecord(ahead, p))
      const ids: string[] = [ahead]
      for (let i = 0; i < 3; i++) {
        const { id: _unused, ...fields } = makeRecord('unused', p, { filename: `n${i}.jsonl`, storageKey: `files/${p}/upload-${i}` })
        const committed = await store.insertNext(fields)
        t.match(committed.id, /^file-[0-9A-HJKMNP-TV-Z]{26}$/)
        t.strictSame(committed, { ...fields, id: committed.id }, 'the record as given, with its new id')
        t.strictSame(await store.get(p, committed.id, NOW), committed)
        ids.push(committed.id)
      }
      t.strictSame([...ids].sort(), ids, 'each id is greater than the last')
      t.strictSame((await store.list({ project: p, limit: 10, order: 'asc', now: NOW })).files.map((f) => f.id), ids)
    })

    t.test('concurrent insertNext: a reader never sees an id appear below one it has already seen', async (t) => {
      const store = await freshStore(t)
      const p = project('order')
      let done = false
      const violations: string[] = []
      const reader = (async () => {
        let seen = new Set<string>()
        let max = ''
        while (!done) {
          const ids = (await store.list({ project: p, limit: 100, order: 'asc', now: NOW })).files.map((f) => f.id)
          for (const id of ids) if (!seen.has(id) && id < max) violations.push(`${id} appeared after ${max}`)
          seen = new Set(ids)
          max = ids.at(-1) ?? max
        }
      })()
      const committed = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
        const { id: _unused, ...fields } = makeRecord('unused', p, { storageKey: `files/${p}/upload-${i}` })
        return (await store.insertNext(fields)).id
      }))
      done = true
      await reader
      t.strictSame(violations, [], 'ids became visible in id order')
      t.equal(new Set(committed).size, 20, 'every id is distinct')
      const listed = (await store.list({ project: p, limit: 100, order: 'asc', now: NOW })).files.map((f) => f.id)
      t.strictSame(listed, [...committed].sort())
    })

    t.test('check answers while open; close is idempotent', async (t) => {
      const store = await freshStore(t)
      await t.resolves(store.check())
      await store.close()
      await t.resolves(store.close())
      await t.rejects(store.check(), 'a closed store is not ready')
    })
  })
}
