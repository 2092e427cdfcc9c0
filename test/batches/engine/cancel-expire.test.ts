import t from 'tap'
import { getBatch } from '../../../src/batches/batch-store.js'
import { transitionBatch } from '../../../src/batches/lifecycle.js'
import { createApiKeyTable } from '../../../src/api-keys.js'
import { buildApp } from '../../../src/app.js'
import { KEY_A, startServer } from '../../helpers/app.js'
import { startControllableUpstream } from '../helpers/controllable-upstream.js'
import { PROJECT_A, chatLines, partsLeft, createBatchRow, fileLines, isTerminal, uploadBatchFile, waitForBatch } from './helpers.js'

const FAST = { LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', BATCH_POLL_INTERVAL_MS: '50', BATCH_CHUNK_LINES: '10', BATCH_RETRY_BASE_MS: '50', BATCH_RETRY_MAX_MS: '500' }

t.test('cancel: cancelled within seconds, in-flight requests aborted, nothing sent after, answered lines kept', async (t) => {
  const upstream = await startControllableUpstream()
  t.teardown(() => upstream.close())
  upstream.setFallback({ latencyMs: 150 })
  const { app, url } = await startServer(t, { ...FAST, UPSTREAM_BASE_URL: `${upstream.url}/v1`, BATCH_CONCURRENCY: '4' })
  const fileId = await uploadBatchFile(url, chatLines(100))
  const created = await createBatchRow(app, fileId)
  await waitForBatch(app, created.id, (b) => b.requestCounts.completed >= 12)
  const inFlightAtCancel = upstream.inFlight()
  const moved = await transitionBatch(app.fileStore.batchDb, app.fileStore.dialect, { id: created.id }, 'cancelling')
  t.ok(moved !== null, 'cancelling')
  const cancelAt = Date.now()
  const batch = await waitForBatch(app, created.id, isTerminal, 10_000)
  const took = Date.now() - cancelAt
  t.equal(batch.status, 'cancelled')
  t.ok(took < 3000, `cancelled within seconds (${took} ms)`)
  t.ok(batch.cancellingAt !== null && batch.cancelledAt !== null)
  const sentBefore = upstream.requests.length
  t.ok(upstream.requests.every((r) => r.at <= cancelAt + 1500), 'nothing sent once the cancel was seen (poll interval 50 ms)')
  // Requests take 150 ms and the cancel is seen within 50 ms: one in flight when it was made is still in flight then.
  if (inFlightAtCancel > 0) t.ok(upstream.abortedRequests() >= 1, `requests in flight were aborted (${upstream.abortedRequests()}; ${inFlightAtCancel} in flight at the cancel)`)
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.equal(upstream.requests.length, sentBefore, 'and nothing later either')
  const output = await fileLines(url, batch.outputFileId!)
  t.equal(output.length, batch.requestCounts.completed, 'the output file holds exactly the answered lines')
  t.ok(output.length >= 12 && output.length < 100)
  t.equal(new Set(output.map((l) => l.custom_id)).size, output.length, 'each once')
  t.equal(batch.errorFileId, null, 'unrun lines are in no file (as OpenAI leaves them)')
  t.equal(batch.requestCounts.total, 100)
  const db = app.fileStore.batchDb
  t.same(await db.selectFrom('batch_results').selectAll().execute(), [], 'recorded rows folded and removed')
  t.same(await partsLeft(app), [])
  // A second cancel of a cancelled batch changes nothing.
  t.equal(await transitionBatch(db, app.fileStore.dialect, { id: created.id }, 'cancelling'), null)
})

t.test('cancel before planning: cancelled with no files and nothing sent', async (t) => {
  const upstream = await startControllableUpstream()
  t.teardown(() => upstream.close())
  // No worker in the first replica: the batch stays validating until the cancel.
  const { app, url, config } = await startServer(t, { ...FAST, UPSTREAM_BASE_URL: `${upstream.url}/v1`, BATCH_WORKER: 'false' })
  const fileId = await uploadBatchFile(url, chatLines(5))
  const created = await createBatchRow(app, fileId)
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal((await getBatch(app.fileStore.batchDb, created.id))?.status, 'validating', 'an API-only replica runs nothing')
  t.ok(await transitionBatch(app.fileStore.batchDb, app.fileStore.dialect, { id: created.id }, 'cancelling'))
  t.equal(app.batchEngine, null)
  await app.close()
  // A worker replica on the same data finishes the cancel.
  const worker = await buildApp({ config: { ...config, BATCH_WORKER: true }, keys: createApiKeyTable([[KEY_A, PROJECT_A]]) })
  t.teardown(() => worker.close())
  await worker.ready()
  const batch = await waitForBatch(worker, created.id, isTerminal, 10_000)
  t.equal(batch.status, 'cancelled')
  t.same([batch.outputFileId, batch.errorFileId, batch.requestCounts], [null, null, { total: 0, completed: 0, failed: 0 }])
  t.equal(upstream.requests.length, 0, 'nothing sent')
})

t.test('past the completion window: expired, answered lines in the output, the rest batch_expired in the error file', async (t) => {
  const upstream = await startControllableUpstream()
  t.teardown(() => upstream.close())
  upstream.setFallback({ latencyMs: 200 })
  const { app, url } = await startServer(t, { ...FAST, UPSTREAM_BASE_URL: `${upstream.url}/v1`, BATCH_CONCURRENCY: '2' })
  const fileId = await uploadBatchFile(url, chatLines(60))
  // 60 lines at 2 × 5 per second need 6 s; the window is 2 s.
  const created = await createBatchRow(app, fileId, { windowSeconds: 2 })
  const batch = await waitForBatch(app, created.id, isTerminal, 30_000)
  t.equal(batch.status, 'expired')
  t.ok(batch.expiredAt !== null)
  const output = await fileLines(url, batch.outputFileId!)
  const errors = await fileLines(url, batch.errorFileId!)
  t.ok(output.length > 0 && output.length < 60, `some lines answered in time (${output.length})`)
  t.equal(output.length + errors.length, 60, 'every line in exactly one file')
  t.same(new Set([...output, ...errors].map((l) => l.custom_id)).size, 60)
  for (const e of errors) t.same(e.error && (e.error as { code: string }).code, 'batch_expired')
  t.same(batch.requestCounts, { total: 60, completed: output.length, failed: errors.length })
  t.ok(upstream.requests.length <= output.length + 2, 'nothing sent past the deadline beyond what was in flight')
})
