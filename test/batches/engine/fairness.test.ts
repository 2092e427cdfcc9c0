import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { KEY_A, KEY_B } from '../../helpers/app.js'
import { startServiceProcess, type ServiceProcess } from '../../helpers/process.js'
import { startControllableUpstream, type ControllableUpstream } from '../helpers/controllable-upstream.js'
import { createBatch, getBatch, timedBatch, uploadLines, waitTerminal } from '../helpers/service-batches.js'
import { chatLines } from './helpers.js'

/**
 * Issue 11 item 4: a small batch of one project, submitted while another project's large
 * batch runs, finishes within about twice its time alone. The service is src/server.ts
 * as its own process; both batches go through POST /v1/files and POST /v1/batches.
 *
 * The upstream is the controllable test double (fixed latency, and it tells which
 * project's line each request is by its model). LATENCY_MS = 100 and BATCH_CONCURRENCY
 * = 8 bound the replica at 80 lines a second: B (500 lines) takes at least 6.25 s alone,
 * A (the 50,000 lines) at least ten minutes, so A runs through all of B and is
 * still running when B is done (the test ends there; the teardown kills the process).
 * An even share gives B half the replica while both run: about twice its time alone.
 * Chunks of 20 lines as in the other engine tests; with the default 100 the ratio
 * measured 1.86 (B waits for the chunk of A in hand, then chunks alternate).
 */
const LATENCY_MS = 100
const CONCURRENCY = 8
const A_LINES = 50_000
const B_LINES = 500

t.setTimeout(120_000)

async function service (t: Test): Promise<{ upstream: ControllableUpstream, service: ServiceProcess }> {
  const upstream = await startControllableUpstream()
  t.teardown(() => upstream.close())
  upstream.setFallback({ latencyMs: LATENCY_MS })
  const service = await startServiceProcess(t, {
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    DATA_DIR: t.testdir({}),
    API_KEYS: `${KEY_A}=project-a,${KEY_B}=project-b`,
    UPSTREAM_BASE_URL: `${upstream.url}/v1`,
    BATCH_CONCURRENCY: String(CONCURRENCY),
    BATCH_CHUNK_LINES: '20',
    BATCH_POLL_INTERVAL_MS: '100'
  })
  return { upstream, service }
}

const modelOf = (body: unknown): unknown => (body as { model?: unknown } | null)?.model

t.test(`B (${B_LINES} lines) while A (${A_LINES} lines) runs: within 2.5× of B alone`, async (t) => {
  const times: { alone?: number, withA?: number } = {}

  await t.test('B alone', async (t) => {
    const { service: s } = await service(t)
    const { batch, ms } = await timedBatch(s.url, KEY_B, chatLines(B_LINES, 'model-b'), 60_000)
    t.equal(batch.status, 'completed')
    t.same(batch.request_counts, { total: B_LINES, completed: B_LINES, failed: 0 })
    times.alone = ms
  })

  await t.test('B while A runs', async (t) => {
    const { upstream, service: s } = await service(t)
    const aFile = await uploadLines(s.url, KEY_A, chatLines(A_LINES, 'model-a'))
    const bFile = await uploadLines(s.url, KEY_B, chatLines(B_LINES, 'model-b'))
    const a = await createBatch(s.url, KEY_A, aFile)
    // B arrives once A is in full flow, as in the case: A holds the replica.
    while (upstream.requests.length < 200) await sleep(50)
    const b = await createBatch(s.url, KEY_B, bFile)
    const { batch, at } = await waitTerminal(s.url, KEY_B, b.id, 90_000)
    t.equal(batch.status, 'completed')
    t.same(batch.request_counts, { total: B_LINES, completed: B_LINES, failed: 0 })
    times.withA = at - b.startedAt
    const aNow = await getBatch(s.url, KEY_A, a.id)
    t.equal(aNow.status, 'in_progress', 'A was still running when B was done')
    t.ok(aNow.request_counts.completed < A_LINES / 2, `A far from done (${aNow.request_counts.completed} of ${A_LINES})`)
    // B's share of what the upstream saw from B's first request to its last.
    const bAt = upstream.requests.filter((r) => modelOf(r.body) === 'model-b').map((r) => r.at)
    const from = Math.min(...bAt)
    const to = Math.max(...bAt)
    const during = upstream.requests.filter((r) => r.at >= from && r.at <= to)
    const share = bAt.length / during.length
    t.comment(`while B ran: ${bAt.length} of its requests among ${during.length} (${(100 * share).toFixed(0)} %), over ${((to - from) / 1000).toFixed(1)} s`)
    // An even share is a half; FIFO would give B nothing until A's 50,000 lines were done.
    t.ok(share >= 0.35, `B had at least 35 % of the upstream's requests while it ran (${(100 * share).toFixed(0)} %)`)
  })

  if (times.alone === undefined || times.withA === undefined) return
  const ratio = times.withA / times.alone
  t.comment(`B alone ${times.alone.toFixed(0)} ms (bound ${B_LINES * LATENCY_MS / CONCURRENCY} ms); B while A runs ${times.withA.toFixed(0)} ms; ratio ${ratio.toFixed(2)}`)
  t.ok(ratio <= 2.5, `B while A runs takes ${ratio.toFixed(2)}× its time alone (at most 2.5×)`)
})
