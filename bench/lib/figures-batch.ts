/**
 * The batch engine under load (issue 10, "Done when": a 50,000-line batch with 2 KB
 * answers keeps the service's RSS growth under 100 MB). The service is the built
 * server as a child process (server.ts), so /proc shows its own memory and CPU; the
 * upstream is the test double (test/batches/helpers/controllable-upstream.ts) in THIS
 * process, answering at once with chat completions padded to --batch-answer-bytes, so
 * its memory is not the service's and the service, not the upstream, is the bottleneck.
 *
 * The batch row is inserted straight into the service's metadata database (the SQLite
 * file in its DATA_DIR, WAL mode admits a second process; or the PostgreSQL database it
 * was started on), as the create route will, and the engine picks it up at its next
 * poll. Progress is read with getBatch on that same database. A small warm-up batch
 * runs first, so "before" is a worker that has run a batch (pool sockets, JIT, caches).
 */
import BetterSqlite3 from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { getBatch, insertBatch, type BatchRecord } from '../../src/batches/batch-store.js'
import type { BatchDatabase, Dialect } from '../../src/batches/tables.js'
import { newBatchId } from '../../src/ids.js'
import { startControllableUpstream, type ControllableUpstream } from '../../test/batches/helpers/controllable-upstream.js'
import { metricSums } from '../../test/batches/helpers/service-batches.js'
import { freshDatabase } from '../../test/helpers/postgres.js'
import { batchFileOfLines, type DataFile } from './data.js'
import { peakRssDuring } from './figures-service.js'
import type { Log } from './figures-transfer.js'
import { download, upload } from './http.js'
import type { Figure } from './report.js'
import { cpuOf, rssOf, settleDisk, startServer, type RunningServer, type ServerOptions } from './server.js'
import { startUpstreamThread } from './upstream-thread.js'

const MiB = 2 ** 20
/** API_KEYS=<bench key> without `=project`: the key's project is `default`. */
const PROJECT = 'default'
const WARM_UP_LINES = 500
const TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled'])

export interface BatchBenchOptions {
  lines: number
  answerBytes: number
  databases: Dialect[]
  /** A PostgreSQL server URL allowed to create databases (TEST_DATABASE_URL), or undefined: SQLite only. */
  postgresUrl: string | undefined
}

interface BatchRun {
  before: number
  peak: number
  wallSeconds: number
  cpuSeconds: number
  mainCpuSeconds: number
  outputBytes: number
}

export function openDb (server: RunningServer, dialect: Dialect, url: string | undefined): Kysely<BatchDatabase> {
  if (dialect === 'postgres') {
    return new Kysely<BatchDatabase>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2, application_name: 'files-api-bench' }) }) })
  }
  const sqlite = new BetterSqlite3(path.join(server.dataDir, 'files.db'))
  // The service writes; this connection waits for its locks rather than failing.
  sqlite.pragma('busy_timeout = 10000')
  return new Kysely<BatchDatabase>({ dialect: new SqliteDialect({ database: sqlite }) })
}

/** Inserts the batch as the create route will and polls it to a terminal status. */
async function runBatch (db: Kysely<BatchDatabase>, dialect: Dialect, upstream: Pick<ControllableUpstream, 'requests'> | null, fileId: string, pid: number, log: Log): Promise<{ batch: BatchRecord, seconds: number, peakByStatus: Map<string, number> }> {
  const id = newBatchId()
  const started = performance.now()
  await insertBatch(db, dialect, { id, project: PROJECT, endpoint: '/v1/chat/completions', inputFileId: fileId, completionWindow: '24h', completionWindowSeconds: 86_400 })
  let lastLog = started
  const peakByStatus = new Map<string, number>()
  for (;;) {
    await sleep(250)
    // The double keeps every request it saw; the bench needs none of them (a thread's forgets them itself).
    if (upstream !== null) upstream.requests.length = 0
    const batch = await getBatch(db, id)
    if (batch === null) throw new Error(`batch ${id} vanished`)
    // Polled, so coarse; enough to tell the run from the finalize when the peak is high.
    const { rss } = await rssOf(pid)
    peakByStatus.set(batch.status, Math.max(peakByStatus.get(batch.status) ?? 0, rss))
    if (TERMINAL.has(batch.status)) return { batch, seconds: (performance.now() - started) / 1000, peakByStatus }
    if (performance.now() - lastLog > 15_000) {
      lastLog = performance.now()
      log(`  ${batch.status}: ${batch.requestCounts.completed + batch.requestCounts.failed}/${batch.requestCounts.total} lines, RSS ${(rss / MiB).toFixed(0)} MiB`)
    }
    if (performance.now() - started > 600_000) throw new Error(`batch ${id} still ${batch.status} after 10 minutes`)
  }
}

export function checkDone (batch: BatchRecord, lines: number): void {
  const c = batch.requestCounts
  if (batch.status !== 'completed' || c.total !== lines || c.completed !== lines || c.failed !== 0 || batch.outputFileId === null) {
    throw new Error(`batch ${batch.id} ended ${batch.status} with ${JSON.stringify(c)}, output ${batch.outputFileId}, errors ${batch.errors}`)
  }
}

async function measure (serverOptions: ServerOptions, dialect: Dialect, input: DataFile, warmUp: DataFile, opts: BatchBenchOptions, log: Log): Promise<BatchRun> {
  const upstream = await startControllableUpstream()
  upstream.setFallback({ bodyBytes: opts.answerBytes })
  const teardowns: Array<() => unknown> = []
  try {
    const databaseUrl = dialect === 'postgres' ? await freshDatabase({ teardown: (fn) => { teardowns.push(fn) } }, opts.postgresUrl ?? '') : undefined
    const server = await startServer({
      ...serverOptions,
      env: {
        UPSTREAM_BASE_URL: `${upstream.url}/v1`,
        ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl }),
        ...serverOptions.env
      }
    })
    const db = openDb(server, dialect, databaseUrl)
    try {
      const warmUpId = (await upload(server.url, warmUp.path, 'batch')).id
      const inputId = (await upload(server.url, input.path, 'batch')).id
      log(`batch ${dialect}: warm-up of ${warmUp.requests} lines`)
      checkDone((await runBatch(db, dialect, upstream, warmUpId, server.pid, log)).batch, warmUp.requests)
      log(`batch ${dialect}: ${input.requests} lines, answers of ${opts.answerBytes} bytes`)
      const cpuBefore = await cpuOf(server.pid)
      const { before, peak, result } = await peakRssDuring(server, async () => await runBatch(db, dialect, upstream, inputId, server.pid, log))
      const cpuAfter = await cpuOf(server.pid)
      checkDone(result.batch, input.requests)
      log(`  polled peak RSS by status: ${[...result.peakByStatus].map(([status, rss]) => `${status} ${(rss / MiB).toFixed(0)} MiB`).join(', ')}`)
      // After the measurement: the output file is all there (its size; the lines were counted by complete).
      const output = await download(server.url, result.batch.outputFileId ?? '')
      return {
        before,
        peak,
        wallSeconds: result.seconds,
        cpuSeconds: cpuAfter.total - cpuBefore.total,
        mainCpuSeconds: cpuAfter.main - cpuBefore.main,
        outputBytes: output.bytes
      }
    } finally {
      await db.destroy()
      await server.stop()
    }
  } finally {
    await upstream.close()
    for (const fn of teardowns.reverse()) await fn()
  }
}

export async function batchFigures (serverOptions: ServerOptions, dataDir: string, opts: BatchBenchOptions, runs: number, log: Log): Promise<Figure[]> {
  const input = await batchFileOfLines(dataDir, 'short', opts.lines)
  const warmUp = await batchFileOfLines(dataDir, 'short', WARM_UP_LINES)
  const dialects = opts.databases.filter((d) => d !== 'postgres' || opts.postgresUrl !== undefined)
  if (opts.postgresUrl === undefined && opts.databases.includes('postgres')) log('batch: TEST_DATABASE_URL is not set, PostgreSQL skipped')
  const figures: Figure[] = []
  for (const dialect of dialects) {
    const samples: BatchRun[] = []
    for (let run = 0; run < runs; run++) {
      log(`batch ${dialect} run ${run + 1}/${runs}`)
      samples.push(await measure(serverOptions, dialect, input, warmUp, opts, log))
    }
    const group = `batch engine (${dialect === 'sqlite' ? 'SQLite' : 'PostgreSQL'} + fs): ${opts.lines} lines of ${(input.bytes / MiB).toFixed(1)} MiB, ` +
      `answers of ${opts.answerBytes} B, upstream latency 0, BATCH_CONCURRENCY ${serverOptions.env?.BATCH_CONCURRENCY ?? 64}` +
      ((serverOptions.nodeArgs ?? []).length > 0 ? `, node ${(serverOptions.nodeArgs ?? []).join(' ')}` : '')
    const of = (f: (r: BatchRun) => number): number[] => samples.map(f)
    figures.push(
      { group, name: 'RSS before (after a warm-up batch)', unit: 'MiB', values: of((r) => r.before / MiB) },
      { group, name: 'peak RSS during the batch', unit: 'MiB', values: of((r) => r.peak / MiB) },
      { group, name: 'peak RSS growth', unit: 'MiB', values: of((r) => (r.peak - r.before) / MiB), target: { of: 'value', op: '<=', limit: 100 }, verdict: { pass: 'met', miss: 'missed' } },
      { group, name: 'wall time, insert to completed', unit: 's', values: of((r) => r.wallSeconds) },
      { group, name: 'lines per second (wall)', unit: 'lines/s', values: of((r) => opts.lines / r.wallSeconds) },
      { group, name: 'lines per CPU second of the service (all threads)', unit: 'lines/s', values: of((r) => opts.lines / r.cpuSeconds) },
      { group, name: 'lines per CPU second of its main thread', unit: 'lines/s', values: of((r) => opts.lines / r.mainCpuSeconds) },
      { group, name: 'output file', unit: 'MiB', values: of((r) => r.outputBytes / MiB) }
    )
  }
  return figures
}

/**
 * Little's law (issue 11 item 5): an upstream that answers in L seconds, with the service
 * allowed C requests in flight, completes at best C / L requests per second. Each (L, C)
 * runs a batch of about eight seconds at that bound, on SQLite + fs, with BATCH_CONCURRENCY
 * and UPSTREAM_MAX_CONCURRENCY both C, and reports lines per second against C / L. The
 * upstream answers from a thread of its own (upstream-thread.ts): on this thread its
 * timers waited for the progress polls, which read as the service being slow.
 */
export async function littleFigures (serverOptions: ServerOptions, dataDir: string, pairs: ReadonlyArray<{ latencyMs: number, concurrency: number }>, log: Log): Promise<Figure[]> {
  const figures: Figure[] = []
  const warmUp = await batchFileOfLines(dataDir, 'short', WARM_UP_LINES)
  for (const { latencyMs, concurrency } of pairs) {
    const bound = concurrency / (latencyMs / 1000)
    const lines = Math.max(2000, Math.round(bound * 8))
    const input = await batchFileOfLines(dataDir, 'short', lines)
    const upstream = await startUpstreamThread(latencyMs)
    try {
      const server = await startServer({
        ...serverOptions,
        env: { ...serverOptions.env, UPSTREAM_BASE_URL: `${upstream.url}/v1`, BATCH_CONCURRENCY: String(concurrency), UPSTREAM_MAX_CONCURRENCY: String(concurrency) }
      })
      const db = openDb(server, 'sqlite', undefined)
      try {
        const warmUpId = (await upload(server.url, warmUp.path, 'batch')).id
        const inputId = (await upload(server.url, input.path, 'batch')).id
        checkDone((await runBatch(db, 'sqlite', null, warmUpId, server.pid, log)).batch, warmUp.requests)
        log(`little: L ${latencyMs} ms, C ${concurrency}: ${lines} lines, bound ${bound.toFixed(0)}/s`)
        // The bench's own files (generated data, earlier uploads) are written back by the
        // kernel some 30 s after they were written; on this disk that writeback held the
        // service's fsyncs, and its event loop, for 200–300 ms every 5 s of the run.
        await settleDisk()
        const before = await upstreamRoundTrips(server.url)
        const run = await steadyRate(db, inputId, lines)
        checkDone(run.batch, lines)
        const after = await upstreamRoundTrips(server.url)
        const group = `batch engine at the upstream's bound (SQLite + fs, ${lines} lines, upstream latency ${latencyMs} ms, C = ${concurrency})`
        figures.push({
          group,
          name: 'lines per second between 10 % and 90 % done, against C / L',
          unit: 'lines/s',
          values: [run.steady],
          baseline: { name: 'C / L', values: [bound] },
          target: { of: 'ratio', op: '>=', limit: 0.9 },
          verdict: { pass: 'met', miss: 'missed' }
        }, {
          group,
          name: 'lines per second from insert to completed (planning, slow start and finalize included)',
          unit: 'lines/s',
          values: [lines / run.seconds],
          baseline: { name: 'C / L', values: [bound] }
        }, {
          // Why a miss is a miss: a slot is held at least this long, so C / this is the
          // best the replica could do; what is left of the gap is reading and recording.
          // Averaged over the whole timed batch (its ramp-up and tail too), not 10–90 %.
          group,
          name: 'mean upstream round trip as the service measured it (its /metrics), against L',
          unit: 'ms',
          values: [(after.seconds - before.seconds) / (after.count - before.count) * 1000],
          baseline: { name: 'L', values: [latencyMs] }
        })
      } finally {
        await db.destroy()
        await server.stop()
      }
    } finally {
      await upstream.close()
    }
  }
  return figures
}

/** The sum and count of the service's upstream round trips so far (every upstream and outcome). */
async function upstreamRoundTrips (url: string): Promise<{ seconds: number, count: number }> {
  const [seconds, count] = await metricSums(url, ['files_api_batch_upstream_duration_seconds_sum', 'files_api_batch_upstream_duration_seconds_count'])
  return { seconds: seconds!, count: count! }
}

/**
 * Runs a batch and times its middle: the rate between 10 % and 90 % of its lines done is
 * the engine at its steady state, what Little's law bounds; the whole run adds the fixed
 * costs of a short batch (a poll before the first claim, planning, slow start, finalize).
 */
async function steadyRate (db: Kysely<BatchDatabase>, fileId: string, lines: number): Promise<{ batch: BatchRecord, seconds: number, steady: number }> {
  const id = newBatchId()
  const started = performance.now()
  await insertBatch(db, 'sqlite', { id, project: PROJECT, endpoint: '/v1/chat/completions', inputFileId: fileId, completionWindow: '24h', completionWindowSeconds: 86_400 })
  let at10: number | null = null
  let at90: number | null = null
  for (;;) {
    await sleep(50)
    const batch = await getBatch(db, id)
    if (batch === null) throw new Error(`batch ${id} vanished`)
    const done = batch.requestCounts.completed + batch.requestCounts.failed
    const now = performance.now()
    if (at10 === null && done >= lines * 0.1) at10 = now
    if (at90 === null && done >= lines * 0.9) at90 = now
    if (TERMINAL.has(batch.status)) {
      const steady = at10 !== null && at90 !== null && at90 > at10 ? (lines * 0.8) / ((at90 - at10) / 1000) : Number.NaN
      return { batch, seconds: (now - started) / 1000, steady }
    }
    if (now - started > 600_000) throw new Error(`batch ${id} still ${batch.status} after 10 minutes`)
  }
}
