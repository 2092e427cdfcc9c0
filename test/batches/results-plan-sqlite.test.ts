/**
 * How SQLite runs the group's one INSERT (src/batches/results.ts), not only what it
 * writes (queue-contract.ts checks that on both dialects): each row must find its chunk
 * by the primary key. Planned from the state index instead, a record compared every
 * leased chunk in the database with every row of its group, and cost grew with the
 * chunks leased anywhere (bench/sqlite-results.ts).
 */
import { join } from 'node:path'
import BetterSqlite3 from 'better-sqlite3'
import { Kysely, SqliteDialect, type CompiledQuery } from 'kysely'
import t from 'tap'
import type { ClaimedChunk } from '../../src/batches/lease.js'
import { createBatchQueue } from '../../src/batches/queue.js'
import { createBatchResults } from '../../src/batches/results.js'
import type { BatchDatabase } from '../../src/batches/tables.js'
import { migrateToLatest } from '../../src/metadata/migrations.js'
import { leaseOf, runningBatch } from './queue-contract.js'

t.test('a group of records finds each chunk by its primary key, however many chunks are leased', async (t) => {
  const sqlite = new BetterSqlite3(join(t.testdir(), 'batches.db'))
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('foreign_keys = ON')
  const queries: CompiledQuery[] = []
  const db = new Kysely<BatchDatabase>({
    dialect: new SqliteDialect({ database: sqlite }),
    log: (event) => { if (event.level === 'query') queries.push(event.query) }
  })
  t.teardown(() => db.destroy())
  await migrateToLatest(db)
  const b = { db, dialect: 'sqlite' as const, second: db }
  // 40 chunks of 10 lines, all leased: the plan that scans them would be chosen here.
  await runningBatch(b, 'p', 40)
  const chunks = await createBatchQueue(db, 'sqlite').claim('A', 40, 60_000) as ClaimedChunk[]
  t.equal(chunks.length, 40)
  const results = createBatchResults(db, 'sqlite')
  queries.length = 0
  const outcomes = await Promise.all(chunks.slice(0, 12).map((c) =>
    results.record(leaseOf(c), { line: c.lineStart, customId: `c${c.seq}`, kind: 'output', result: '{}' })))
  t.strictSame(outcomes, Array(12).fill('recorded'), 'one group, every row recorded')
  const inserts = queries.filter((q) => /insert into batch_results/.test(q.sql))
  t.equal(inserts.length, 1, 'the twelve records went in one statement')
  const plan = sqlite.prepare(`explain query plan ${inserts[0]!.sql}`).all(...inserts[0]!.parameters) as Array<{ detail: string }>
  const details = plan.map((row) => row.detail)
  t.ok(details.some((d) => /SEARCH c USING INDEX sqlite_autoindex_batch_chunks_1 \(batch_id=\? AND seq=\?\)/.test(d)), `by the primary key: ${details.join('; ')}`)
  t.notOk(details.some((d) => /batch_chunks_state_idx/.test(d)), 'not from the state index')
})
