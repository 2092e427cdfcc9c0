/**
 * Fair share (issue 11 items 4 and 5): a 500-line batch of one project submitted while
 * another project's 50,000-line batch runs, against the same small batch alone, on the
 * same kind of fresh server. The upstream is the controllable double at a fixed latency
 * (so the replica, at BATCH_CONCURRENCY, is the bottleneck and the share is what is
 * measured); the goal is the small batch within 2× its time alone, an even share of the
 * replica while both run. test/batches/engine/fairness.test.ts asserts the same case.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Kysely } from 'kysely'
import { getBatch, insertBatch } from '../../src/batches/batch-store.js'
import type { BatchDatabase } from '../../src/batches/tables.js'
import { newBatchId } from '../../src/ids.js'
import { startControllableUpstream } from '../../test/batches/helpers/controllable-upstream.js'
import { batchFileOfLines } from './data.js'
import { checkDone, openDb } from './figures-batch.js'
import type { Log } from './figures-transfer.js'
import { upload } from './http.js'
import type { Figure } from './report.js'
import { API_KEY, startServer, type ServerOptions } from './server.js'

const LATENCY_MS = 100
const CONCURRENCY = 8
const LARGE_LINES = 50_000
const SMALL_LINES = 500
/** The small batch's project: a second key beside the bench's own (project `default`). */
const SMALL_KEY = 'bench-key-small-0123456789abcdef'
const SMALL_PROJECT = 'bench-small'
const LARGE_PROJECT = 'default'

/** Inserts a batch row as the create route does; the engine takes it at its next poll. */
async function start (db: Kysely<BatchDatabase>, project: string, fileId: string): Promise<string> {
  const id = newBatchId()
  await insertBatch(db, 'sqlite', { id, project, endpoint: '/v1/chat/completions', inputFileId: fileId, completionWindow: '24h', completionWindowSeconds: 86_400 })
  return id
}

/** Seconds from `from` until the batch completes (polled every 50 ms). */
async function untilCompleted (db: Kysely<BatchDatabase>, id: string, lines: number, from: number): Promise<number> {
  for (;;) {
    await sleep(50)
    const batch = await getBatch(db, id)
    if (batch === null) throw new Error(`batch ${id} vanished`)
    if (batch.status !== 'validating' && batch.status !== 'in_progress' && batch.status !== 'finalizing') {
      checkDone(batch, lines)
      return (performance.now() - from) / 1000
    }
    if (performance.now() - from > 300_000) throw new Error(`batch ${id} still ${batch.status} after 5 minutes`)
  }
}

/** One fresh server: the small batch alone, or submitted once the large one is in full flow. */
async function smallBatchSeconds (serverOptions: ServerOptions, dataDir: string, withLarge: boolean): Promise<number> {
  const small = await batchFileOfLines(dataDir, 'short', SMALL_LINES)
  const large = withLarge ? await batchFileOfLines(dataDir, 'short', LARGE_LINES) : undefined
  const upstream = await startControllableUpstream()
  upstream.setFallback({ latencyMs: LATENCY_MS })
  try {
    const server = await startServer({
      ...serverOptions,
      env: {
        ...serverOptions.env,
        API_KEYS: `${API_KEY},${SMALL_KEY}=${SMALL_PROJECT}`,
        UPSTREAM_BASE_URL: `${upstream.url}/v1`,
        BATCH_CONCURRENCY: String(CONCURRENCY),
        // As the fairness test: chunks of 20, so the small batch waits for little of the large one's chunk in hand.
        BATCH_CHUNK_LINES: '20',
        BATCH_POLL_INTERVAL_MS: '100'
      }
    })
    const db = openDb(server, 'sqlite', undefined)
    try {
      const smallFile = (await upload(server.url, small.path, 'batch', 'small.jsonl', SMALL_KEY)).id
      if (large !== undefined) {
        const largeFile = (await upload(server.url, large.path, 'batch', 'large.jsonl')).id
        await start(db, LARGE_PROJECT, largeFile)
        // The large batch holds the replica before the small one arrives, as in the case.
        while (upstream.requests.length < 200) await sleep(50)
      }
      const from = performance.now()
      const id = await start(db, SMALL_PROJECT, smallFile)
      const seconds = await untilCompleted(db, id, SMALL_LINES, from)
      upstream.requests.length = 0
      return seconds
    } finally {
      await db.destroy()
      await server.stop()
    }
  } finally {
    await upstream.close()
  }
}

export async function fairnessFigures (serverOptions: ServerOptions, dataDir: string, runs: number, log: Log): Promise<Figure[]> {
  const alone: number[] = []
  const beside: number[] = []
  for (let run = 0; run < runs; run++) {
    log(`fairness run ${run + 1}/${runs}: ${SMALL_LINES} lines alone, then beside ${LARGE_LINES} lines of another project`)
    alone.push(await smallBatchSeconds(serverOptions, dataDir, false))
    beside.push(await smallBatchSeconds(serverOptions, dataDir, true))
  }
  const group = `fair share (SQLite + fs, upstream latency ${LATENCY_MS} ms, BATCH_CONCURRENCY ${CONCURRENCY}: at most ${CONCURRENCY * 1000 / LATENCY_MS} lines/s)`
  return [{
    group,
    name: `a ${SMALL_LINES}-line batch while another project's ${LARGE_LINES}-line batch runs, against it alone (insert to completed)`,
    unit: 's',
    values: beside,
    baseline: { name: 'alone', values: alone },
    target: { of: 'ratio', op: '<=', limit: 2 },
    verdict: { pass: 'met', miss: 'missed' }
  }]
}
