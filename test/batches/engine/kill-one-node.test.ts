import { join } from 'node:path'
import t from 'tap'
import { startServiceProcess, waitForExit, type ServiceProcess } from '../../helpers/process.js'
import { startControllableUpstream } from '../helpers/controllable-upstream.js'
import { chatLines, uploadBatchFile } from './helpers.js'
import { answered, assertExactlyOnce, filesUnder, insertBatchRow, openSqlite, PROCESS_KEYS, resent, resentAcross, untilEmpty, waitFor } from './process-helpers.js'

const LINES = 400
const CONCURRENCY = 16
const CHUNK_LINES = 20

/**
 * Issue 10 item 3 on one node: SQLite and fs, the service a real process, SIGKILLed while
 * the batch runs. A new process on the same DATA_DIR takes the chunks over once the dead
 * one's leases lapse, and finishes: every line exactly once in the results, and the
 * upstream received again only what was in flight at each kill (≤ BATCH_CONCURRENCY).
 *
 * Two kills: one in the middle of chunks (110 answered lines: the most requests in
 * flight), one after a chunk's parts were written and before it completed, where the
 * dead holder leaves parts under an epoch the chunk no longer has: that one found them
 * left behind (result-files.ts removeParts).
 */
t.test('SIGKILL mid-run on one node (SQLite + fs), twice: restarts finish the batch, every line once, re-sent ≤ BATCH_CONCURRENCY per kill', async (t) => {
  // About 25 s alone; up to 60 s beside other process tests on a loaded machine.
  t.setTimeout(120_000)
  const upstream = await startControllableUpstream()
  t.teardown(() => upstream.close())
  // Slow enough that the kills land mid-run: 400 lines / 16 in flight × 100 ms ≈ 2.5 s of sending.
  upstream.setFallback({ latencyMs: 100 })
  const dataDir = t.testdir({})
  const env = {
    DATA_DIR: dataDir,
    API_KEYS: PROCESS_KEYS,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    UPSTREAM_BASE_URL: `${upstream.url}/v1`,
    BATCH_CONCURRENCY: String(CONCURRENCY),
    BATCH_CHUNK_LINES: String(CHUNK_LINES),
    BATCH_LEASE_TTL_MS: '2000',
    BATCH_POLL_INTERVAL_MS: '100'
  }
  let service: ServiceProcess = await startServiceProcess(t, env)
  const fileId = await uploadBatchFile(service.url, chatLines(LINES))
  const tdb = openSqlite(t, dataDir)
  const created = await insertBatchRow(tdb, fileId)

  const partsDir = join(dataDir, 'blobs', 'files', 'batch-parts', created.id)
  /**
   * The second kill aims at the gap between a chunk's part objects and its completion:
   * a part on disk whose chunk is still leased at the part's epoch. Polled every few ms
   * from 250 answered lines on; if the gap is never seen, the kill lands at 300.
   */
  async function partsBeforeComplete (): Promise<string | null> {
    for (const name of await filesUnder(partsDir)) {
      const [seq, epoch] = name.split('.')[0]!.split('-').map(Number)
      const row = await tdb.db.selectFrom('batch_chunks').select(['state', 'lease_epoch']).where('batch_id', '=', created.id).where('seq', '=', seq!).executeTakeFirst()
      if (row?.state === 'leased' && Number(row.lease_epoch) === epoch) return name
    }
    return null
  }

  const kills: number[] = []
  let caught: string | null = null
  for (const killAt of [110, 250]) {
    let mid = await waitFor(tdb.db, created.id, (b) => answered(b) >= killAt, 40_000)
    if (kills.length === 1) {
      while (answered(mid) < 300 && (caught = await partsBeforeComplete()) === null) mid = await waitFor(tdb.db, created.id, () => true, 1000)
    }
    const inFlight = upstream.inFlight()
    service.child.kill('SIGKILL')
    await waitForExit(service.child)
    kills.push(Date.now())
    t.ok(answered(mid) < LINES, `killed mid-run at ${answered(mid)} of ${LINES} answered, ${upstream.requests.length} sent, ${inFlight} in flight at the upstream`)
    service = await startServiceProcess(t, env)
  }
  t.comment(caught === null ? 'second kill: the gap between parts and completion was not caught; killed at 300 answered' : `second kill: between the parts and the completion of chunk part ${caught}`)
  const done = await waitFor(tdb.db, created.id, (b) => b.status === 'completed' || b.status === 'failed', 40_000)
  const lastRestartToDone = Date.now() - kills.at(-1)!
  await assertExactlyOnce(t, service.url, done, LINES)

  const perKill = kills.map((at, i) => resentAcross(upstream.requests, at, kills[i + 1]))
  const r = resent(upstream)
  t.comment(`re-sent lines per kill: ${perKill.join(', ')} (BATCH_CONCURRENCY ${CONCURRENCY}); in all ${r.lines} lines, ${r.extraRequests} extra requests, at most ${r.maxSends} sends of one line; last kill to completed: ${lastRestartToDone} ms`)
  for (const [i, n] of perKill.entries()) t.ok(n <= CONCURRENCY, `kill ${i + 1}: re-sent ${n} ≤ BATCH_CONCURRENCY`)
  t.equal(r.extraRequests, perKill.reduce((a, b) => a + b, 0), 'every extra request is one the kills explain')
  t.equal(upstream.requests.length, LINES + r.extraRequests)

  t.same(await untilEmpty(async () => await filesUnder(join(dataDir, 'blobs', 'files', 'batch-parts'))), [], 'no parts left under DATA_DIR/blobs/files/batch-parts/')
  t.same(await tdb.db.selectFrom('batch_results').selectAll().execute(), [], 'no recorded rows left')
  const states = await tdb.db.selectFrom('batch_chunks').select('state').where('batch_id', '=', created.id).execute()
  t.same(states.map((s) => s.state), Array(LINES / CHUNK_LINES).fill('done'), 'every chunk done')
})
