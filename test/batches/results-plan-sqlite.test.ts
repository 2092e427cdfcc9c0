/**
 * How SQLite runs the group's one INSERT (src/batches/results.ts), not only what it
 * writes (queue-contract.ts checks that on both dialects): each row must find its chunk
 * by the primary key. Planned from the state index instead, a record compared every
 * leased chunk in the database with every row of its group, and cost grew with the
 * chunks leased anywhere (bench/sqlite-results.ts); with the join reordered, a large
 * group scanned every chunk.
 */
import { CompiledQuery } from 'kysely'
import t from 'tap'
import type { ClaimedChunk } from '../../src/batches/lease.js'
import { createBatchQueue } from '../../src/batches/queue.js'
import { createBatchResults } from '../../src/batches/results.js'
import { sqliteBatchDb } from './helpers/batch-db.js'
import { leaseOf, runningBatch } from './queue-contract.js'

t.test('a group of records finds each chunk by its primary key, at every size and however many chunks are leased', async (t) => {
  const queries: CompiledQuery[] = []
  const b = await sqliteBatchDb(t, { log: (event) => { if (event.level === 'query') queries.push(event.query) } })
  const db = b.db
  // 100 chunks of 10 lines, all leased, and a batch of 300 chunks never claimed: the
  // plans that scan leased chunks, or all chunks, would be chosen here.
  const id = await runningBatch(b, 'p', 100)
  await runningBatch(b, 'q', 300)
  const chunks: ClaimedChunk[] = []
  const queue = createBatchQueue(db, 'sqlite')
  while (chunks.length < 100) {
    const claimed = await queue.claim('A', 100 - chunks.length, 60_000)
    if (claimed.length === 0) break
    chunks.push(...claimed.filter((c) => c.batchId === id))
  }
  const lines = chunks.flatMap((c) => Array.from({ length: c.lineEnd - c.lineStart }, (_, i) => ({ c, line: c.lineStart + i })))
  const results = createBatchResults(db, 'sqlite')
  // 12 and 64 take the statements compiled once, 250 and MAX_GROUP (500) are built as they come.
  let next = 0
  for (const size of [12, 64, 250, 500]) {
    const group = lines.slice(next, next + size)
    next += size
    t.equal(group.length, size, `${size} lines to record`)
    queries.length = 0
    const outcomes = await Promise.all(group.map(({ c, line }) =>
      results.record(leaseOf(c), { line, customId: `l${line}`, kind: 'output', result: '{}' })))
    t.strictSame(outcomes, Array(size).fill('recorded'), `one group of ${size}, every row recorded`)
    const inserts = queries.filter((q) => /insert into batch_results/.test(q.sql))
    t.equal(inserts.length, 1, `the ${size} records went in one statement`)
    const { rows: plan } = await db.executeQuery<{ detail: string }>(CompiledQuery.raw(`explain query plan ${inserts[0]!.sql}`, [...inserts[0]!.parameters]))
    const details = plan.map((row) => row.detail)
    t.ok(details.some((d) => /SEARCH c USING INDEX sqlite_autoindex_batch_chunks_1 \(batch_id=\? AND seq=\?\)/.test(d)), `${size}: by the primary key: ${details.join('; ')}`)
    t.notOk(details.some((d) => /batch_chunks_state_idx|SCAN c\b/.test(d)), `${size}: neither from the state index nor a scan of the chunks`)
  }
})
