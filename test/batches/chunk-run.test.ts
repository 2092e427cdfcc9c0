import path from 'node:path'
import { Readable } from 'node:stream'
import t from 'tap'
import { ChunkRun } from '../../src/batches/chunk-run.js'
import { createBatchQueue } from '../../src/batches/queue.js'
import { RequestSlots } from '../../src/batches/request-slots.js'
import { createBatchResults, type BatchResults } from '../../src/batches/results.js'
import { RetryBudgets } from '../../src/batches/retry-policy.js'
import { UpstreamLimiters } from '../../src/batches/upstream-limiter.js'
import { createUpstreamClients, DEFAULT_UPSTREAM_CLIENT_OPTIONS } from '../../src/batches/upstream-client.js'
import { singleUpstream } from '../../src/batches/upstream-url.js'
import { createFsBlobStore } from '../../src/storage/fs-blob-store.js'
import { startControllableUpstream } from './helpers/controllable-upstream.js'
import { sqliteBatchDb } from './helpers/batch-db.js'
import { runningBatch } from './queue-contract.js'

t.test('the in-flight bound covers answers not yet recorded: a crash re-sends at most BATCH_CONCURRENCY', async (t) => {
  const b = await sqliteBatchDb(t)
  const store = await createFsBlobStore({ root: path.join(t.testdirName, 'blobs') })
  t.teardown(() => store.close())
  const upstream = await startControllableUpstream()
  t.teardown(() => upstream.close())
  const clients = createUpstreamClients({ ...DEFAULT_UPSTREAM_CLIENT_OPTIONS, connections: 8 })
  t.teardown(() => clients.close())
  const lines = 30
  let text = ''
  for (let i = 1; i <= lines; i++) text += JSON.stringify({ custom_id: `c${i}`, method: 'POST', url: '/v1/chat/completions', body: { model: 'm', messages: [] } }) + '\n'
  await store.put('in', Readable.from([Buffer.from(text)]))
  const batchId = await runningBatch(b, 'p', 0)
  const queue = createBatchQueue(b.db, b.dialect)
  await queue.plan(batchId, [{ byteStart: 0, byteEnd: Buffer.byteLength(text), lineStart: 1, lineEnd: lines + 1 }])
  const [chunk] = await queue.claim('me', 1, 60_000)
  if (chunk === undefined) throw new Error('no chunk')

  // FAULT INJECTION: the real results store, each record delayed 50 ms (a slow database,
  // which a local SQLite file cannot be made to be), while the upstream answers at once.
  const real = createBatchResults(b.db, b.dialect)
  let maxUnrecorded = 0
  const results: BatchResults = {
    ...real,
    async record (lease, result) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      return await real.record(lease, result)
    }
  }
  const watch = setInterval(async () => {
    const recorded = (await real.recordedLines(batchId, 0)).length
    maxUnrecorded = Math.max(maxUnrecorded, upstream.requests.length - recorded)
  }, 5)
  t.teardown(() => clearInterval(watch))
  const run = new ChunkRun({
    blobStore: store, queue, results, resultFiles: { blobStore: store, results: real, fileService: {} as never, storagePrefix: 'files/', now: Date.now },
    upstreams: singleUpstream(`${upstream.url}/v1`), clients, budgets: new RetryBudgets(), slots: new RequestSlots(3), limiters: new UpstreamLimiters(256),
    backoff: { baseMs: 1, capMs: 2 }, maxLineBytes: 1 << 20, random: Math.random, clock: Date.now,
    observer: { sent () {}, answered () {}, retried () {}, recorded () {} }, log: { warn () {} }
  }, chunk, { id: batchId, inputKey: 'in', deadlineMs: Date.now() + 60_000 })
  t.equal(await run.run(), 'completed')
  clearInterval(watch)
  t.equal(upstream.requests.length, lines)
  t.comment(`most requests sent but not yet recorded at once: ${maxUnrecorded}, with 3 slots`)
  t.ok(maxUnrecorded <= 3, `answered-but-unrecorded requests stay within the 3 slots (saw ${maxUnrecorded})`)
  t.equal(upstream.maxInFlight() <= 3, true)
})
