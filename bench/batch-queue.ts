/**
 * `node --expose-gc --import tsx bench/batch-queue.ts [postgres://…]`: the batch queue's
 * cost for one 50,000-line batch with 2 KiB results, on SQLite (default, a temporary
 * file) or on the PostgreSQL database given (it must be empty; it is migrated). Records
 * every line through the queue and results modules as the engine will, with 64
 * requests in flight, writes each chunk's "part" by paging its results (bytes counted,
 * not stored), then completes the chunk. Prints elapsed time, lines per second, the
 * peak RSS growth over the start, and the most result rows held at once.
 * Not part of `npm run bench` yet: the executor will drive these same calls there.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import BetterSqlite3 from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely'
import pg from 'pg'
import { insertBatch } from '../src/batches/batch-store.js'
import { transitionBatch } from '../src/batches/lifecycle.js'
import { createBatchQueue, type PlannedChunk } from '../src/batches/queue.js'
import { createBatchResults } from '../src/batches/results.js'
import type { BatchDatabase, Dialect } from '../src/batches/tables.js'
import { migrateToLatest } from '../src/metadata/migrations.js'

const LINES = Number(process.env.BENCH_LINES ?? 50_000)
const LINES_PER_CHUNK = 500
const IN_FLIGHT = 64
const CLAIM = 4
const RESULT = JSON.stringify({ id: 'batch_req_x', custom_id: 'c', response: { status_code: 200, body: { text: 'x'.repeat(2000) } }, error: null })

async function open (url: string | undefined): Promise<{ db: Kysely<BatchDatabase>, dialect: Dialect, cleanup: () => Promise<void> }> {
  if (url !== undefined) {
    const db = new Kysely<BatchDatabase>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 10 }) }) })
    return { db, dialect: 'postgres', cleanup: async () => { await db.destroy() } }
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'files-api-batch-queue-'))
  const sqlite = new BetterSqlite3(path.join(dir, 'b.db'))
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('synchronous = NORMAL')
  const db = new Kysely<BatchDatabase>({ dialect: new SqliteDialect({ database: sqlite }) })
  return { db, dialect: 'sqlite', cleanup: async () => { await db.destroy(); await rm(dir, { recursive: true, force: true }) } }
}

async function main (): Promise<void> {
  const { db, dialect, cleanup } = await open(process.argv[2])
  try {
    await migrateToLatest(db)
    const queue = createBatchQueue(db, dialect)
    const results = createBatchResults(db, dialect)
    const id = `batch_bench_${Date.now()}`
    await insertBatch(db, dialect, { id, project: 'bench', endpoint: '/v1/chat/completions', inputFileId: 'file-x', completionWindow: '24h', completionWindowSeconds: 86_400 })
    const chunks: PlannedChunk[] = []
    for (let line = 1; line <= LINES; line += LINES_PER_CHUNK) {
      chunks.push({ byteStart: (line - 1) * 2500, byteEnd: (line - 1 + LINES_PER_CHUNK) * 2500, lineStart: line, lineEnd: line + LINES_PER_CHUNK })
    }
    await queue.plan(id, chunks)
    await transitionBatch(db, dialect, { id }, 'in_progress', { requestTotal: LINES })

    globalThis.gc?.()
    const startRss = process.memoryUsage().rss
    let peakRss = startRss
    const startHeap = process.memoryUsage().heapUsed
    let peakHeap = startHeap
    let peakRows = 0
    const sampler = setInterval(() => {
      const m = process.memoryUsage()
      peakRss = Math.max(peakRss, m.rss)
      peakHeap = Math.max(peakHeap, m.heapUsed)
    }, 25)
    const started = performance.now()
    let partBytes = 0
    for (let claimed = await queue.claim('bench', CLAIM, 60_000); claimed.length > 0; claimed = await queue.claim('bench', CLAIM, 60_000)) {
      const lines = claimed.flatMap((c) => Array.from({ length: c.lineEnd - c.lineStart }, (_, i) => ({ c, line: c.lineStart + i })))
      let next = 0
      await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
        for (let item = lines[next++]; item !== undefined; item = lines[next++]) {
          await results.record(item.c, { line: item.line, customId: `c${item.line}`, kind: 'output', result: RESULT })
        }
      }))
      const rows = await db.selectFrom('batch_results').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow()
      peakRows = Math.max(peakRows, Number(rows.n))
      for (const c of claimed) {
        for (let page = await results.page(id, c.seq, 'output', 0, 200); page.length > 0; page = await results.page(id, c.seq, 'output', page.at(-1)?.line ?? 0, 200)) {
          for (const r of page) partBytes += r.result.length + 1
        }
        await queue.complete(c)
      }
    }
    const seconds = (performance.now() - started) / 1000
    clearInterval(sampler)
    const counts = await queue.counts(id)
    console.log(JSON.stringify({
      dialect,
      lines: LINES,
      seconds: Math.round(seconds * 10) / 10,
      linesPerSecond: Math.round(LINES / seconds),
      peakRssGrowthMiB: Math.round((peakRss - startRss) / 2 ** 20),
      peakHeapGrowthMiB: Math.round((peakHeap - startHeap) / 2 ** 20),
      rssGrowthAfterGcMiB: (() => { globalThis.gc?.(); return Math.round((process.memoryUsage().rss - startRss) / 2 ** 20) })(),
      peakResultRows: peakRows,
      partMiB: Math.round(partBytes / 2 ** 20),
      chunks: counts
    }))
  } finally {
    await cleanup()
  }
}

await main()
