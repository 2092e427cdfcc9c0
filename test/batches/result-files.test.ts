import { Buffer } from 'node:buffer'
import { mkdir, readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { text } from 'node:stream/consumers'
import { Ajv } from 'ajv'
import t, { type Test } from 'tap'
import { createBatchQueue } from '../../src/batches/queue.js'
import {
  answerLine, doneChunks, failureLine, finalizeResultFiles, partKey, partsPrefix, resultKind, writeChunkParts, type ResultFilesDeps
} from '../../src/batches/result-files.js'
import { createBatchResults } from '../../src/batches/results.js'
import { createFileService, type FileService } from '../../src/files/file-service.js'
import type { FileStore } from '../../src/metadata/file-store.js'
import { createPostgresFileStore } from '../../src/metadata/postgres-file-store.js'
import { createSqliteFileStore } from '../../src/metadata/sqlite-file-store.js'
import type { BlobStore, PutOptions, PutResult } from '../../src/storage/blob-store.js'
import { createFsBlobStore } from '../../src/storage/fs-blob-store.js'
import { freshDatabase, testDatabaseUrl } from '../helpers/postgres.js'
import { postgresBatchDb, sqliteBatchDb, type BatchDb } from './helpers/batch-db.js'
import { leaseOf, runningBatch } from './queue-contract.js'

const PREFIX = 'files/'
const PROJECT = 'proj'
const spec = JSON.parse(await readFile(new URL('../fixtures/openai-batch-lines.json', import.meta.url), 'utf8')) as { schemas: Record<string, object> }
// The spec is OpenAPI 3.0 (nullable, x-oai* keywords): ajv knows nullable, strict off for the rest.
const validateLine = new Ajv({ strict: false }).compile(spec.schemas.BatchRequestOutput!)

/**
 * A fault injector, not a stand-in: every call goes to the real fs store, except that a
 * put of a key that `failWhen` picks gets a body that breaks after its first piece (a
 * storage failure mid-write the real driver cannot be made to show on demand).
 */
function faultInjector (inner: BlobStore, failWhen: (key: string) => boolean): BlobStore & { armed: boolean } {
  const store = Object.create(inner) as BlobStore & { armed: boolean }
  store.armed = true
  store.put = async (key: string, body: Readable, options?: PutOptions): Promise<PutResult> => {
    if (!store.armed || !failWhen(key)) return await inner.put(key, body, options)
    const breaking = async function * (): AsyncGenerator<Buffer> {
      for await (const piece of body as AsyncIterable<Buffer>) {
        yield piece
        throw new Error('injected storage failure')
      }
    }
    return await inner.put(key, Readable.from(breaking()), options)
  }
  return store
}

interface Setup { b: BatchDb, blobs: BlobStore, fileStore: FileStore, files: FileService }

async function setup (t: Test, b: BatchDb, postgresUrl?: string): Promise<Setup> {
  // t.testdirName, not t.testdir(): a second t.testdir() would empty the directory the SQLite batch db already lives in.
  const dir = t.testdirName
  await mkdir(dir, { recursive: true })
  // Not emptied by tap then: a run before this one may have left its blobs and file rows.
  await rm(path.join(dir, 'blobs'), { recursive: true, force: true })
  await rm(path.join(dir, 'files.db'), { force: true })
  t.teardown(async () => rm(path.join(dir, 'blobs'), { recursive: true, force: true }))
  const blobs = await createFsBlobStore({ root: path.join(dir, 'blobs') })
  t.teardown(() => blobs.close())
  const fileStore = postgresUrl === undefined
    ? await createSqliteFileStore({ filename: path.join(dir, 'files.db') })
    : await createPostgresFileStore({ connectionString: postgresUrl, poolMax: 2 })
  t.teardown(() => fileStore.close())
  await fileStore.migrate()
  const files = createFileService({ blobStore: blobs, fileStore, now: Date.now, log: { info: () => {}, warn: () => {} } })
  return { b, blobs, fileStore, files }
}

/** Line n's result: a 200, a 400 every 4th line, a non-HTTP failure every 7th. */
function resultOf (line: number): { kind: 'output' | 'error', result: string, customId: string } {
  const customId = `req-${line}`
  if (line % 7 === 0) return { kind: 'error', customId, result: failureLine({ id: `batch_req_${line}`, customId, code: 'batch_expired', message: 'This request could not be executed before the completion window expired.' }) }
  const statusCode = line % 4 === 0 ? 400 : 200
  const body = statusCode === 200 ? { id: `cmpl-${line}`, object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: `answer ${line} é` } }] } : { error: { message: 'bad model', type: 'invalid_request_error' } }
  return { kind: resultKind(statusCode), customId, result: answerLine({ id: `batch_req_${line}`, customId, statusCode, requestId: `req_${line}`, body }) }
}

/** A running batch of 3 chunks × 10 lines, every line recorded out of order, the parts of chunk 2, 0, 1 written then completed. */
async function ranBatch (s: Setup, deps: ResultFilesDeps): Promise<string> {
  const id = await runningBatch(s.b, PROJECT, 3)
  const queue = createBatchQueue(s.b.db, s.b.dialect)
  const claimed = await queue.claim('w1', 3, 60_000)
  t.equal(claimed.length, 3)
  for (const c of claimed) {
    const lines = Array.from({ length: c.lineEnd - c.lineStart }, (_, i) => c.lineStart + i).reverse()
    for (const line of lines) await deps.results.record(leaseOf(c), { line, ...resultOf(line) })
  }
  for (const seq of [2, 0, 1]) {
    const c = claimed.find((x) => x.seq === seq)!
    const counts = await writeChunkParts(deps, leaseOf(c))
    await queue.complete(leaseOf(c))
    t.equal(counts.output + counts.error, 10)
  }
  return id
}

async function keys (store: BlobStore, prefix: string): Promise<string[]> {
  const out: string[] = []
  for await (const info of store.list(prefix)) out.push(info.key)
  return out
}

function runSuite (name: string, make: (t: Test) => Promise<Setup>): void {
  t.test(name, async (t) => {
    await t.test('parts out of order, then finalize: two files, every custom_id once, parts gone', async (t) => {
      const s = await make(t)
      const deps: ResultFilesDeps = { blobStore: s.blobs, results: createBatchResults(s.b.db, s.b.dialect), fileService: s.files, storagePrefix: PREFIX, now: Date.now }
      const id = await ranBatch(s, deps)
      // A zombie's late part, under a stale epoch: lands beside the real one and is never read.
      await s.blobs.put(partKey(PREFIX, id, 1, 0, 'output'), Readable.from([Buffer.from('{"zombie":true}\n')]))
      let recorded: unknown = null
      const before = Math.floor(Date.now() / 1000)
      const ids = await finalizeResultFiles(deps, {
        batchId: id, project: PROJECT, expiresAfterSeconds: 3600, chunks: await doneChunks(s.b.db, id),
        onCommitted: async (files) => { recorded = files }
      })
      t.same(recorded, { outputFileId: ids.outputFileId, errorFileId: ids.errorFileId })
      t.equal(ids.partsRemoved, true)
      const expected = { output: [] as string[], error: [] as string[] }
      for (let line = 1; line <= 30; line++) expected[resultOf(line).kind].push(resultOf(line).result + '\n')
      const seen = new Map<string, number>()
      for (const [kind, fileId] of [['output', ids.outputFileId], ['error', ids.errorFileId]] as const) {
        const file = await s.files.get(PROJECT, fileId!)
        const content = await text((await s.blobs.get(file.storageKey)).body)
        t.equal(content, expected[kind].join(''), `${kind} file: the lines in line order, byte for byte`)
        t.match(file, { project: PROJECT, purpose: 'batch_output', filename: `${id}_${kind}.jsonl`, bytes: Buffer.byteLength(content), requestCount: null, warnings: [] })
        t.ok(file.createdAt >= before)
        t.equal(file.expiresAt, file.createdAt + 3600)
        for (const line of content.trimEnd().split('\n')) {
          const parsed = JSON.parse(line) as { custom_id: string, response: { status_code: number } | null }
          t.ok(validateLine(parsed), `validates: ${JSON.stringify(validateLine.errors)}`)
          t.same(Object.keys(parsed), ['id', 'custom_id', 'response', 'error'])
          if (kind === 'output') t.equal(parsed.response?.status_code, 200)
          seen.set(parsed.custom_id, (seen.get(parsed.custom_id) ?? 0) + 1)
        }
      }
      t.same([...seen.keys()].sort(), Array.from({ length: 30 }, (_, i) => `req-${i + 1}`).sort(), 'every custom_id')
      t.ok([...seen.values()].every((n) => n === 1), 'each exactly once across the two files')
      // The stale-epoch part goes too, at once: what a killed holder wrote need not wait
      // for the reconciler's grace (kill-one-node.test.ts).
      t.same(await keys(s.blobs, partsPrefix(PREFIX, id)), [], 'every part is gone, the stale-epoch one too')
      const stored = await keys(s.blobs, `${PREFIX}${PROJECT}/`)
      const rows = (await s.files.list({ project: PROJECT, limit: 100, order: 'asc' })).files
      t.same(stored.sort(), rows.map((r) => r.storageKey).sort(), 'exactly the two files\' objects')
      t.equal(rows.length, 2)
    })

    await t.test('no errors: no error file (null id), like OpenAI', async (t) => {
      const s = await make(t)
      const deps: ResultFilesDeps = { blobStore: s.blobs, results: createBatchResults(s.b.db, s.b.dialect), fileService: s.files, storagePrefix: PREFIX, now: Date.now }
      const id = await runningBatch(s.b, PROJECT, 1)
      const queue = createBatchQueue(s.b.db, s.b.dialect)
      const [c] = await queue.claim('w', 1, 60_000)
      for (let line = 1; line <= 10; line++) {
        await deps.results.record(leaseOf(c!), { line, customId: `c${line}`, kind: 'output', result: answerLine({ id: `r${line}`, customId: `c${line}`, statusCode: 200, requestId: 'x', body: [1] }) })
      }
      await writeChunkParts(deps, leaseOf(c!))
      await queue.complete(leaseOf(c!))
      const ids = await finalizeResultFiles(deps, { batchId: id, project: PROJECT, expiresAfterSeconds: null, chunks: await doneChunks(s.b.db, id) })
      t.equal(ids.errorFileId, null)
      const file = await s.files.get(PROJECT, ids.outputFileId!)
      t.equal(file.expiresAt, null)
      const first = (await text((await s.blobs.get(file.storageKey)).body)).split('\n')[0]!
      t.same(JSON.parse(first), { id: 'r1', custom_id: 'c1', response: { status_code: 200, request_id: 'x', body: { value: [1] } }, error: null }, 'a non-object body is wrapped')
    })

    await t.test('a storage failure while writing the error file: no file, no object left, parts kept; a retry succeeds', async (t) => {
      const s = await make(t)
      let calls = 0
      // The second file object put (the error file's) breaks; parts are written unharmed.
      const faulty = faultInjector(s.blobs, (key) => !key.includes('batch-parts/') && calls++ === 1)
      const results = createBatchResults(s.b.db, s.b.dialect)
      const deps: ResultFilesDeps = { blobStore: faulty, results, fileService: createFileService({ blobStore: faulty, fileStore: s.fileStore, now: Date.now, log: { info: () => {}, warn: () => {} } }), storagePrefix: PREFIX, now: Date.now }
      const id = await ranBatch(s, deps)
      const chunks = await doneChunks(s.b.db, id)
      let committed = false
      await t.rejects(finalizeResultFiles(deps, { batchId: id, project: PROJECT, expiresAfterSeconds: 60, chunks, onCommitted: async () => { committed = true } }), /injected storage failure/)
      t.equal(committed, false)
      t.same((await s.files.list({ project: PROJECT, limit: 100, order: 'asc' })).files, [], 'no file row')
      t.same(await keys(s.blobs, `${PREFIX}${PROJECT}/`), [], 'no file object: the output file made before the failure is gone again')
      t.equal((await keys(s.blobs, partsPrefix(PREFIX, id))).length, 6, 'all six parts kept for a retry')
      // A part gone missing: refused, nothing made.
      await s.blobs.delete(partKey(PREFIX, id, 2, chunks[2]!.epoch, 'error'))
      faulty.armed = false
      await t.rejects(finalizeResultFiles(deps, { batchId: id, project: PROJECT, expiresAfterSeconds: 60, chunks }))
      t.same(await keys(s.blobs, `${PREFIX}${PROJECT}/`), [], 'still no file object')
      t.same((await s.files.list({ project: PROJECT, limit: 100, order: 'asc' })).files, [], 'still no file row')
      // The missing part cannot be rewritten (its chunk's rows went at complete); the other chunks still finalize.
      const ids = await finalizeResultFiles(deps, { batchId: id, project: PROJECT, expiresAfterSeconds: 60, chunks: chunks.slice(0, 2) })
      t.ok(ids.outputFileId !== null && ids.errorFileId !== null)
      t.equal((await s.files.list({ project: PROJECT, limit: 100, order: 'asc' })).files.length, 2)
    })
  })
}

t.test('commitStream: a row that cannot be written takes its object with it', async (t) => {
  const dir = t.testdir()
  const blobs = await createFsBlobStore({ root: path.join(dir, 'blobs') })
  t.teardown(() => blobs.close())
  const fileStore = await createSqliteFileStore({ filename: path.join(dir, 'files.db') })
  await fileStore.migrate()
  await fileStore.close()
  const files = createFileService({ blobStore: blobs, fileStore, now: Date.now, log: { info: () => {}, warn: () => {} } })
  const file = { project: PROJECT, filename: 'x.jsonl', purpose: 'batch_output' as const, createdAt: 1, expiresAt: null, requestCount: null, storageKey: `${PREFIX}${PROJECT}/upload-x`, warnings: [] }
  await t.rejects(files.commitStream(file, Readable.from([Buffer.from('line\n')])), { code: 'database_unavailable' })
  t.same(await keys(blobs, PREFIX), [], 'no object left')
})

runSuite('result files on sqlite', async (t) => setup(t, await sqliteBatchDb(t)))
const pgUrl = testDatabaseUrl()
if (pgUrl === undefined) {
  t.test('result files on postgres', { skip: 'TEST_DATABASE_URL is not set' }, async () => {})
} else {
  runSuite('result files on postgres', async (t) => {
    const url = await freshDatabase(t, pgUrl)
    return setup(t, await postgresBatchDb(t, url), url)
  })
}
