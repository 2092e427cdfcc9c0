import t from 'tap'
import { KEY_A, startServer } from '../../helpers/app.js'
import { seededRandom } from '../../helpers/seeded-random.js'
import { startControllableUpstream } from '../helpers/controllable-upstream.js'
import { chatLines, createBatchRow, fileLines, isTerminal, uploadBatchFile, waitForBatch } from './helpers.js'

/**
 * Upstream faults that must defer lines, never fail them (issue 10 item 4, "Done when":
 * a 30 % 429 storm and a 10-second outage both end `completed` with no failed line).
 * The controllable upstream is a test double: a real inference server cannot be made to
 * answer 429 three times in ten, or to refuse connections for exactly ten seconds.
 */

const FAST = { LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', BATCH_POLL_INTERVAL_MS: '50', BATCH_CHUNK_LINES: '10', BATCH_RETRY_BASE_MS: '50', BATCH_RETRY_MAX_MS: '500' }

function customIds (lines: Array<Record<string, unknown>>): string[] {
  return lines.map((l) => String(l.custom_id)).sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)))
}

t.test('a 30 % 429 storm with Retry-After: completed, no failed line, every line answered once in the output', async (t) => {
  const upstream = await startControllableUpstream()
  t.teardown(() => upstream.close())
  upstream.storm(0.3, { status: 429, retryAfter: '1' }, seededRandom(429))
  const { app, url } = await startServer(t, { ...FAST, UPSTREAM_BASE_URL: `${upstream.url}/v1`, BATCH_CONCURRENCY: '16' })
  const fileId = await uploadBatchFile(url, chatLines(200))
  const created = await createBatchRow(app, fileId)
  const batch = await waitForBatch(app, created.id, isTerminal, 120_000)
  t.equal(batch.status, 'completed')
  t.same(batch.requestCounts, { total: 200, completed: 200, failed: 0 })
  t.equal(batch.errorFileId, null, 'no error file: nothing failed')
  const output = await fileLines(url, batch.outputFileId!)
  t.same(customIds(output), Array.from({ length: 200 }, (_, i) => `req-${i + 1}`))
  const throttled = upstream.requests.length - 200
  t.ok(throttled > 40, `the storm was real: ${throttled} requests answered 429 and retried`)
  t.comment(`429 storm: ${upstream.requests.length} requests for 200 lines`)
  t.equal(batch.upstreamRetries, throttled, 'every re-send is counted on the batch')
  const shown = await fetch(`${url}/v1/batches/${created.id}`, { headers: { authorization: `Bearer ${KEY_A}` } })
  t.equal(((await shown.json()) as { upstream_retries: unknown }).upstream_retries, throttled, 'and shown on the Batch object')
  // Retry-After is honoured: a line answered 429 is not sent again within a second.
  const byLine = new Map<string, number[]>()
  for (const r of upstream.requests) {
    const prompt = (r.body as { messages: Array<{ content: string }> }).messages[0]!.content
    byLine.set(prompt, [...(byLine.get(prompt) ?? []), r.at])
  }
  let gaps = 0
  for (const times of byLine.values()) {
    for (let i = 1; i < times.length; i++) {
      gaps++
      t.ok(times[i]! - times[i - 1]! >= 950, `a retry waited its Retry-After (${times[i]! - times[i - 1]!} ms)`)
    }
  }
  t.equal(gaps, throttled)
})

t.test('a 10-second outage (connections refused): lines wait and all complete, none failed', async (t) => {
  t.setTimeout(120_000)
  const upstream = await startControllableUpstream()
  t.teardown(() => upstream.close())
  upstream.setFallback({ latencyMs: 20 })
  const { app, url } = await startServer(t, { ...FAST, UPSTREAM_BASE_URL: `${upstream.url}/v1`, BATCH_CONCURRENCY: '8' })
  const fileId = await uploadBatchFile(url, chatLines(300))
  const created = await createBatchRow(app, fileId)
  await waitForBatch(app, created.id, (b) => b.requestCounts.completed >= 30)
  await upstream.refuse()
  const downAt = Date.now()
  await new Promise((resolve) => setTimeout(resolve, 10_000))
  const during = await waitForBatch(app, created.id, () => true)
  t.equal(during.status, 'in_progress', 'still running through the outage')
  t.equal(during.requestCounts.failed, 0, 'no line failed during the outage')
  await upstream.reopen()
  t.comment(`outage lasted ${Date.now() - downAt} ms`)
  const batch = await waitForBatch(app, created.id, isTerminal, 60_000)
  t.equal(batch.status, 'completed')
  t.same(batch.requestCounts, { total: 300, completed: 300, failed: 0 })
  t.equal(batch.errorFileId, null)
  t.same(customIds(await fileLines(url, batch.outputFileId!)), Array.from({ length: 300 }, (_, i) => `req-${i + 1}`))
  const retries = await (await fetch(`${url}/metrics`)).text()
  t.match(retries, /files_api_batch_retries_total\{upstream="http:\/\/127\.0\.0\.1:\d+\/v1",reason="connect_refused"\} \d+/, 'the retries show in /metrics')
})

t.test('5xx and 408 are retried, other 4xx are final: each line lands in exactly one file', async (t) => {
  const upstream = await startControllableUpstream()
  t.teardown(() => upstream.close())
  upstream.queue({ status: 500 }, { status: 503 }, { status: 408 }, { status: 502 })
  upstream.rejectModels('bad-model')
  const { app, url } = await startServer(t, { ...FAST, UPSTREAM_BASE_URL: `${upstream.url}/v1`, BATCH_CONCURRENCY: '1' })
  // One slot: lines 1–4 take the four faults in order, each is retried once; 5 and 6 are refused.
  const fileId = await uploadBatchFile(url, chatLines(4) + chatLines(2, 'bad-model', 5))
  const batch = await waitForBatch(app, (await createBatchRow(app, fileId)).id, isTerminal)
  t.equal(batch.status, 'completed')
  t.same(batch.requestCounts, { total: 6, completed: 4, failed: 2 })
  t.equal(upstream.requests.length, 10, 'four retried answers, then one send per line')
  t.equal(batch.upstreamRetries, 4, 'one retry each for lines 1–4; a final 4xx is no retry')
  t.same(customIds(await fileLines(url, batch.outputFileId!)), ['req-1', 'req-2', 'req-3', 'req-4'])
  const errors = await fileLines(url, batch.errorFileId!)
  t.same(errors.map((l) => [l.custom_id, (l.response as { status_code: number }).status_code, l.error]), [['req-5', 400, null], ['req-6', 400, null]])
  t.match((errors[0]?.response as { body: unknown }).body, { error: { message: 'model bad-model is not served' } }, 'the upstream\'s body is kept')
})
