/**
 * The cost of recording batch results in SQLite, per line, on the caller's thread (the
 * replica's event loop): N results of ~500 bytes recorded G at a time (one group commit
 * each), through createBatchResults as the engine calls it, with the SQLite file store's
 * pragmas (synchronous FULL unless SYNC=NORMAL). At C = 256 the engine records about 2,500
 * lines a second in groups of about 10, so each µs here is about 0.25 % of a core.
 *
 * Every chunk of the batch is leased at once (N / 100 of them) unless LEASED says how
 * many are: the others wait queued and are marked done once recorded, as a replica
 * running LEASED chunks at a time leaves them. A plan that scans the leased chunks shows
 * as a cost growing with N.
 *
 *   node --import tsx bench/sqlite-results.ts          # N=20000 G=10
 *   N=20000 G=100 node --import tsx bench/sqlite-results.ts
 *   N=40000 LEASED=3 node --import tsx bench/sqlite-results.ts
 */
import BetterSqlite3 from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createBatchResults } from '../src/batches/results.js'
import type { BatchDatabase } from '../src/batches/tables.js'
import { migrateToLatest } from '../src/metadata/migrations.js'
import { cachingStatements } from '../src/metadata/statement-cache.js'

const dir = mkdtempSync(join(tmpdir(), 'files-api-sqlite-results-'))
const file = join(dir, 'results.db')
const sqlite = new BetterSqlite3(file)
sqlite.pragma('journal_mode = WAL'); sqlite.pragma('synchronous = ' + (process.env.SYNC ?? 'FULL')); sqlite.pragma('foreign_keys = ON')
const db = new Kysely<BatchDatabase>({ dialect: new SqliteDialect({ database: cachingStatements(sqlite) }) })
await migrateToLatest(db)
const batchId = 'batch_01JXXXXXXXXXXXXXXXXXXXXXXX'
await db.insertInto('batches').values({ id: batchId, project: 'p', status: 'in_progress', endpoint: '/v1/chat/completions', input_file_id: 'file-x', completion_window: '24h', created_at: 0 } as any).execute()
const CH = 100, N = Number(process.env.N ?? 20000), G = Number(process.env.G ?? 10)
for (let s = 0; s < N / CH; s++) await db.insertInto('batch_chunks').values({ batch_id: batchId, seq: s, byte_start: 0, byte_end: 1, line_start: s * CH + 1, line_end: (s + 1) * CH + 1, state: 'leased', lease_owner: 'me', lease_epoch: 1, lease_expires_at_ms: 9e15 } as any).execute()
const LEASED = Number(process.env.LEASED ?? N / CH)
await db.updateTable('batch_chunks').set({ state: 'queued' }).where('seq', '>=', LEASED).execute()
const results = createBatchResults(db, 'sqlite')
const text = JSON.stringify({ id: 'batch_req_01JXXXXXXXXXXXXXXXXXXXXXXX', custom_id: 'request-000001', response: { status_code: 200, request_id: 'req_x', body: { id: 'chatcmpl', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'x'.repeat(300) }, finish_reason: 'stop' }], usage: { prompt_tokens: 10, completion_tokens: 20, total_tokens: 30 } } }, error: null })
if (G > LEASED * CH) throw new RangeError(`G (${G}) must fit in the LEASED chunks' ${LEASED * CH} lines`)
let nextDone = 0
const t0 = performance.now(); const c0 = process.cpuUsage()
for (let line = 1; line <= N; line += G) {
  const ps = []
  for (let l = line; l < line + G && l <= N; l++) {
    const seq = Math.floor((l - 1) / CH)
    ps.push(results.record({ batchId, seq, epoch: 1 }, { line: l, customId: `request-${l}`, kind: 'output', result: text, usage: { inputTokens: 10, cachedTokens: 0, outputTokens: 20, reasoningTokens: 0, totalTokens: 30 } }))
  }
  await Promise.all(ps)
  // Every chunk whose lines are all recorded is done, and the next one waiting is leased.
  for (const last = Math.min(line + G - 1, N); LEASED < N / CH && (nextDone + 1) * CH <= last; nextDone++) {
    await db.updateTable('batch_chunks').set({ state: 'done' }).where('seq', '=', nextDone).execute()
    await db.updateTable('batch_chunks').set({ state: 'leased' }).where('seq', '=', nextDone + LEASED).execute()
  }
}
const ms = performance.now() - t0; const cpu = process.cpuUsage(c0)
console.log(`N ${N} G ${G} leased ${LEASED}: ${(ms * 1000 / N).toFixed(1)} µs/line wall, ${((cpu.user + cpu.system) / N).toFixed(1)} µs/line cpu (user ${(cpu.user / N).toFixed(1)} sys ${(cpu.system / N).toFixed(1)})`)
await db.destroy()
rmSync(dir, { recursive: true, force: true })
