import type { Test } from 'tap'
import { monotonicFactory } from 'ulid'
import { getBatch, insertBatch } from '../../src/batches/batch-store.js'
import { LeaseLostError, type Lease } from '../../src/batches/lease.js'
import { transitionBatch } from '../../src/batches/lifecycle.js'
import { createBatchQueue, type ClaimedChunk, type PlannedChunk } from '../../src/batches/queue.js'
import { createBatchResults } from '../../src/batches/results.js'
import { databaseNowMs, untilDatabasePasses, type BatchDb, type MakeBatchDb } from './helpers/batch-db.js'

const LONG = 60_000

/** `count` chunks of `lines` lines each, 100 bytes a line. */
export function plannedChunks (count: number, lines = 10): PlannedChunk[] {
  return Array.from({ length: count }, (_, i) => ({
    byteStart: i * lines * 100,
    byteEnd: (i + 1) * lines * 100,
    lineStart: 1 + i * lines,
    lineEnd: 1 + (i + 1) * lines
  }))
}

const nextId = monotonicFactory()

/** A batch of `project` with `chunks` planned chunks, in_progress (or left validating). */
export async function runningBatch (b: BatchDb, project: string, chunks: number, opts: { start?: boolean } = {}): Promise<string> {
  const id = `batch_${nextId()}`
  await insertBatch(b.db, b.dialect, {
    id, project, endpoint: '/v1/chat/completions', inputFileId: 'file-x', completionWindow: '24h', completionWindowSeconds: 86_400
  })
  await createBatchQueue(b.db, b.dialect).plan(id, plannedChunks(chunks))
  if (opts.start !== false) await transitionBatch(b.db, b.dialect, { id }, 'in_progress', { requestTotal: chunks * 10 })
  return id
}

export function leaseOf (c: ClaimedChunk): Lease {
  return { batchId: c.batchId, seq: c.seq, epoch: c.epoch }
}

async function state (b: BatchDb, batchId: string, seq: number): Promise<{ state: string, epoch: number, owner: string | null }> {
  const row = await b.db.selectFrom('batch_chunks').select(['state', 'lease_epoch', 'lease_owner'])
    .where('batch_id', '=', batchId).where('seq', '=', seq).executeTakeFirstOrThrow()
  return { state: row.state, epoch: Number(row.lease_epoch), owner: row.lease_owner }
}

/**
 * The queue's behaviour on every dialect. Each subtest gets its own database, so claims
 * (which look at every batch) see only that subtest's batches.
 */
export function runQueueContract (t: Test, name: string, makeDb: MakeBatchDb): void {
  t.test(name, async (t) => {
    t.test('plan inserts chunks in order, once; a bad plan is refused', async (t) => {
      const b = await makeDb(t)
      const q = createBatchQueue(b.db, b.dialect)
      const id = await runningBatch(b, 'p', 0, { start: false })
      t.equal(await q.plan(id, plannedChunks(1200)), 1200, 'more chunks than one INSERT holds')
      t.equal(await q.plan(id, plannedChunks(1200)), 0, 'planning again inserts nothing')
      t.strictSame(await q.counts(id), { queued: 1200, leased: 0, done: 0 })
      const last = await b.db.selectFrom('batch_chunks').selectAll().where('batch_id', '=', id).where('seq', '=', 1199).executeTakeFirstOrThrow()
      t.strictSame([Number(last.byte_start), Number(last.byte_end), Number(last.line_start), Number(last.line_end)], [1_199_000, 1_200_000, 11_991, 12_001])
      const overlapping = [{ byteStart: 0, byteEnd: 10, lineStart: 1, lineEnd: 3 }, { byteStart: 5, byteEnd: 20, lineStart: 3, lineEnd: 4 }]
      await t.rejects(q.plan(id, overlapping), RangeError)
      await t.rejects(q.plan(id, [{ byteStart: 0, byteEnd: 0, lineStart: 1, lineEnd: 2 }]), RangeError)
    })

    t.test('claim marks the chunk leased with epoch + 1, expiring on the database clock', async (t) => {
      const b = await makeDb(t)
      const q = createBatchQueue(b.db, b.dialect)
      const waiting = await runningBatch(b, 'p', 2, { start: false })
      t.strictSame(await q.claim('A', 5, LONG), [], 'a validating batch has nothing to claim')
      await transitionBatch(b.db, b.dialect, { id: waiting }, 'in_progress')

      const before = await databaseNowMs(b)
      // This process's clock an hour off: the lease must not move, it is the database's.
      const realNow = Date.now
      Date.now = () => realNow() + 3_600_000
      let claimed: ClaimedChunk[]
      try {
        claimed = await q.claim('A', 1, 5_000)
      } finally {
        Date.now = realNow
      }
      const after = await databaseNowMs(b)
      t.equal(claimed.length, 1)
      const [c] = claimed as [ClaimedChunk]
      t.strictSame({ ...c, leaseExpiresAtMs: 0 }, {
        batchId: waiting, seq: 0, epoch: 1, owner: 'A', byteStart: 0, byteEnd: 1000, lineStart: 1, lineEnd: 11, leaseExpiresAtMs: 0, attempts: 1
      })
      t.ok(c.leaseExpiresAtMs >= before + 5_000 && c.leaseExpiresAtMs <= after + 5_000, 'expires at database now + ttl')
      t.strictSame(await state(b, waiting, 0), { state: 'leased', epoch: 1, owner: 'A' })
      const second = await q.claim('B', 5, LONG)
      t.strictSame(second.map((x) => [x.seq, x.epoch]), [[1, 1]], 'a live lease is not claimed again')
      t.strictSame(await q.claim('B', 5, LONG), [])
      await t.rejects(q.claim('A', 0, LONG), RangeError)
    })

    t.test('a lapsed lease is taken over with a higher epoch; the old holder changes nothing', async (t) => {
      const b = await makeDb(t)
      const q = createBatchQueue(b.db, b.dialect)
      const results = createBatchResults(b.db, b.dialect)
      const id = await runningBatch(b, 'p', 1)
      const [a] = await q.claim('A', 1, 150) as [ClaimedChunk]
      t.equal(await results.record(leaseOf(a), { line: 1, customId: 'c1', kind: 'output', result: '{"l":1}' }), 'recorded')
      t.strictSame(await q.claim('B', 1, LONG), [], 'not before it lapses')
      await untilDatabasePasses(b, a.leaseExpiresAtMs)
      const [bee] = await q.claim('B', 1, LONG) as [ClaimedChunk]
      t.strictSame([bee.seq, bee.epoch, bee.owner, bee.attempts], [0, 2, 'B', 2])

      const old = leaseOf(a)
      await t.rejects(q.renew(old, LONG), LeaseLostError, 'heartbeat refused')
      await t.rejects(q.complete(old), LeaseLostError, 'complete refused')
      await t.rejects(q.defer(old, 0), LeaseLostError, 'defer refused')
      await t.rejects(q.release(old), LeaseLostError, 'release refused')
      await t.rejects(results.record(old, { line: 2, customId: 'c2', kind: 'output', result: '{}' }), LeaseLostError, 'record refused')
      t.strictSame(await state(b, id, 0), { state: 'leased', epoch: 2, owner: 'B' }, 'the row is still the new holder\'s')
      t.strictSame(await results.recordedLines(id, 0), [1], 'what the old holder recorded before it lapsed stays; nothing after')

      t.ok(await q.renew(leaseOf(bee), LONG) > a.leaseExpiresAtMs, 'the new holder renews')
      t.equal(await results.record(leaseOf(bee), { line: 1, customId: 'c1', kind: 'output', result: '{"l":1}' }), 'duplicate')
      t.equal(await results.record(leaseOf(bee), { line: 2, customId: 'c2', kind: 'error', result: '{"l":2}' }), 'recorded')
      const done = await q.complete(leaseOf(bee))
      t.ok(done.doneAtMs >= a.leaseExpiresAtMs)
      t.strictSame([done.outputLines, done.errorLines], [1, 1], 'counted from the recorded rows')
      t.strictSame(await state(b, id, 0), { state: 'done', epoch: 2, owner: null })
      t.strictSame(await results.recordedLines(id, 0), [], 'complete drops the chunk\'s results')
      await t.rejects(q.renew(leaseOf(bee), LONG), LeaseLostError, 'a done chunk has no lease')
      await t.rejects(results.record(leaseOf(bee), { line: 3, customId: 'c3', kind: 'output', result: '{}' }), LeaseLostError)
      t.strictSame(await q.claim('C', 1, LONG), [], 'a done chunk is never claimed')
    })

    t.test('a holder killed mid-chunk: the next one sends only the lines without a result', async (t) => {
      const b = await makeDb(t)
      const q = createBatchQueue(b.db, b.dialect)
      const results = createBatchResults(b.db, b.dialect)
      const id = await runningBatch(b, 'p', 1)
      const [a] = await q.claim('A', 1, 100) as [ClaimedChunk]
      // A recorded lines 1, 2 and 4 (answers arrive out of order); 3 and 5 were in flight when it died.
      for (const line of [1, 2, 4]) await results.record(leaseOf(a), { line, customId: `c${line}`, kind: 'output', result: `a${line}` })
      await untilDatabasePasses(b, a.leaseExpiresAtMs)
      const [c] = await q.claim('B', 1, LONG) as [ClaimedChunk]
      const done = new Set(await results.recordedLines(id, c.seq))
      const toSend = Array.from({ length: c.lineEnd - c.lineStart }, (_, i) => c.lineStart + i).filter((line) => !done.has(line))
      t.strictSame(toSend, [3, 5, 6, 7, 8, 9, 10], 're-sent: only the two in flight, then the unsent')
      for (const line of toSend) t.equal(await results.record(leaseOf(c), { line, customId: `c${line}`, kind: 'output', result: `b${line}` }), 'recorded')
      const page = await results.page(id, c.seq, 'output', 0, 100)
      t.strictSame(page.map((r) => r.result), ['a1', 'a2', 'b3', 'a4', 'b5', 'b6', 'b7', 'b8', 'b9', 'b10'], 'each line once, in line order')
      t.equal((await getBatch(b.db, id))?.requestCounts.completed, 10)
    })

    t.test('a lapsed lease nobody took over may still be renewed: the epoch is the fence', async (t) => {
      const b = await makeDb(t)
      const q = createBatchQueue(b.db, b.dialect)
      await runningBatch(b, 'p', 1)
      const [a] = await q.claim('A', 1, 100) as [ClaimedChunk]
      await untilDatabasePasses(b, a.leaseExpiresAtMs)
      t.ok(await q.renew(leaseOf(a), LONG) > a.leaseExpiresAtMs)
      t.strictSame(await q.claim('B', 1, LONG), [], 'renewed: not claimable')
    })

    t.test('release and releaseOwned hand chunks back at once', async (t) => {
      const b = await makeDb(t)
      const q = createBatchQueue(b.db, b.dialect)
      const id = await runningBatch(b, 'p', 4)
      const [first] = await q.claim('A', 1, LONG) as [ClaimedChunk]
      await q.release(leaseOf(first))
      const again = await q.claim('B', 1, LONG)
      t.strictSame(again.map((c) => [c.seq, c.epoch, c.owner]), [[0, 2, 'B']], 'claimable at once, next epoch')

      const mine = await q.claim('A', 10, LONG)
      t.equal(mine.length, 3)
      t.equal(await q.releaseOwned('A'), 3, 'every lease of the stopping replica')
      t.equal(await q.releaseOwned('A'), 0)
      t.strictSame(await q.counts(id), { queued: 3, leased: 1, done: 0 }, 'B keeps its own')
      const taken = await q.claim('C', 10, LONG)
      t.strictSame(taken.map((c) => [c.seq, c.epoch]).sort(), [[1, 2], [2, 2], [3, 2]])
      for (const c of mine) await t.rejects(q.renew(leaseOf(c), LONG), LeaseLostError, 'the stopped replica holds nothing')
    })

    t.test('defer keeps a chunk back until not_before on the database clock', async (t) => {
      const b = await makeDb(t)
      const q = createBatchQueue(b.db, b.dialect)
      const id = await runningBatch(b, 'p', 1)
      const [a] = await q.claim('A', 1, LONG) as [ClaimedChunk]
      const before = await databaseNowMs(b)
      await q.defer(leaseOf(a), 300)
      const row = await b.db.selectFrom('batch_chunks').select(['state', 'not_before_ms']).where('batch_id', '=', id).executeTakeFirstOrThrow()
      t.equal(row.state, 'queued')
      t.ok(Number(row.not_before_ms) >= before + 300, 'not_before = database now + delay')
      t.strictSame(await q.claim('B', 1, LONG), [], 'deferred')
      await untilDatabasePasses(b, Number(row.not_before_ms))
      t.strictSame((await q.claim('B', 1, LONG)).map((c) => [c.seq, c.epoch]), [[0, 2]])
      await t.rejects(q.defer(leaseOf(a), -1), RangeError)
    })

    t.test('results count once: live while the chunk runs, folded into the batch at complete', async (t) => {
      const b = await makeDb(t)
      const q = createBatchQueue(b.db, b.dialect)
      const results = createBatchResults(b.db, b.dialect)
      const id = await runningBatch(b, 'p', 2)
      const [c] = await q.claim('A', 1, LONG) as [ClaimedChunk]
      const usage = { inputTokens: 5, cachedTokens: 1, outputTokens: 7, reasoningTokens: 2, totalTokens: 12 }
      t.equal(await results.record(leaseOf(c), { line: 1, customId: 'a', kind: 'output', result: 'o1', usage }), 'recorded')
      t.equal(await results.record(leaseOf(c), { line: 1, customId: 'a', kind: 'output', result: 'o1-again', usage }), 'duplicate')
      t.equal(await results.record(leaseOf(c), { line: 3, customId: 'b', kind: 'error', result: 'e3' }), 'recorded')
      t.equal(await results.record(leaseOf(c), { line: 2, customId: 'c', kind: 'output', result: 'o2', usage }), 'recorded')
      await t.rejects(results.record(leaseOf(c), { line: 11, customId: 'd', kind: 'output', result: 'x' }), LeaseLostError, 'line of another chunk')
      const expected = {
        requestCounts: { total: 20, completed: 2, failed: 1 },
        usage: { inputTokens: 10, cachedTokens: 2, outputTokens: 14, reasoningTokens: 4, totalTokens: 24 }
      }
      const live = await getBatch(b.db, id, 'p')
      t.strictSame({ requestCounts: live?.requestCounts, usage: live?.usage }, expected, 'current while the chunk runs')
      const row = await b.db.selectFrom('batches').select(['request_completed']).where('id', '=', id).executeTakeFirstOrThrow()
      t.equal(Number(row.request_completed), 0, 'the batch row is not written per line')
      t.strictSame(await results.page(id, 0, 'output', 0, 10), [{ line: 1, customId: 'a', result: 'o1' }, { line: 2, customId: 'c', result: 'o2' }], 'the first result stays')
      t.strictSame(await results.page(id, 0, 'output', 1, 10), [{ line: 2, customId: 'c', result: 'o2' }])
      t.strictSame(await results.page(id, 0, 'error', 0, 10), [{ line: 3, customId: 'b', result: 'e3' }])

      t.strictSame(await q.complete(leaseOf(c)).then((d) => [d.outputLines, d.errorLines]), [2, 1])
      const folded = await getBatch(b.db, id, 'p')
      t.strictSame({ requestCounts: folded?.requestCounts, usage: folded?.usage }, expected, 'the same after the fold: counted once')
      const after = await b.db.selectFrom('batches').select(['request_completed', 'request_failed', 'usage_total_tokens']).where('id', '=', id).executeTakeFirstOrThrow()
      t.strictSame([after.request_completed, after.request_failed, after.usage_total_tokens].map(Number), [2, 1, 24], 'now in the batch row')
      const chunk = await b.db.selectFrom('batch_chunks').select(['output_lines', 'error_lines']).where('batch_id', '=', id).where('seq', '=', 0).executeTakeFirstOrThrow()
      t.strictSame([chunk.output_lines, chunk.error_lines].map(Number), [2, 1], 'the chunk keeps its line counts for finalize')

      t.ok(await transitionBatch(b.db, b.dialect, { id }, 'cancelling'))
      t.strictSame(await q.claim('B', 5, LONG), [], 'nothing of a cancelling batch is claimed')
    })

    t.test('records made together go in one group, and each is settled as it would be alone', async (t) => {
      const b = await makeDb(t)
      const q = createBatchQueue(b.db, b.dialect)
      const results = createBatchResults(b.db, b.dialect)
      const id = await runningBatch(b, 'p', 2)
      const [c0, c1] = await q.claim('A', 2, LONG) as [ClaimedChunk, ClaimedChunk]
      const stale = { ...leaseOf(c1), epoch: c1.epoch + 1 }
      // Not awaited one by one: all of them reach one group commit.
      const settled = await Promise.allSettled([
        results.record(leaseOf(c0), { line: 1, customId: 'a', kind: 'output', result: 'first' }),
        results.record(leaseOf(c0), { line: 1, customId: 'a', kind: 'output', result: 'second' }),
        results.record(leaseOf(c1), { line: 11, customId: 'b', kind: 'error', result: 'e11', retries: 2 }),
        results.record(leaseOf(c0), { line: 12, customId: 'x', kind: 'output', result: 'outside its chunk' }),
        results.record(stale, { line: 12, customId: 'y', kind: 'output', result: 'under an epoch never held' }),
        results.record(leaseOf(c1), { line: 12, customId: 'c', kind: 'output', result: 'o12' })
      ])
      t.strictSame(settled.map((s) => s.status === 'fulfilled' ? s.value : (s.reason instanceof LeaseLostError ? 'lease lost' : String(s.reason))),
        ['recorded', 'duplicate', 'recorded', 'lease lost', 'lease lost', 'recorded'])
      const rows = await b.db.selectFrom('batch_results').select(['line', 'seq', 'custom_id', 'result', 'recorded_epoch', 'upstream_retries'])
        .where('batch_id', '=', id).orderBy('line').execute()
      t.strictSame(rows.map((r) => [Number(r.line), Number(r.seq), r.custom_id, r.result, Number(r.recorded_epoch), Number(r.upstream_retries)]), [
        [1, 0, 'a', 'first', c0.epoch, 0],
        [11, 1, 'b', 'e11', c1.epoch, 2],
        [12, 1, 'c', 'o12', c1.epoch, 0]
      ], 'the first record of a line stays; nothing refused was written')
    })

    t.test('a group larger than the sizes compiled once, then one of them, records every line once', async (t) => {
      const b = await makeDb(t)
      const q = createBatchQueue(b.db, b.dialect)
      const results = createBatchResults(b.db, b.dialect)
      const id = await runningBatch(b, 'p', 10)
      const chunks = await q.claim('A', 10, LONG)
      t.equal(chunks.length, 10)
      const recordAll = async (lines: number[]): Promise<string[]> => await Promise.all(lines.map(async (line) => {
        const c = chunks.find((c) => c.lineStart <= line && c.lineEnd > line)!
        return await results.record(leaseOf(c), { line, customId: `r${line}`, kind: line % 7 === 0 ? 'error' : 'output', result: `{"line":${line}}`, usage: { inputTokens: line, cachedTokens: 0, outputTokens: 1, reasoningTokens: 0, totalTokens: line + 1 } })
      }))
      const first = Array.from({ length: 70 }, (_, i) => i + 1)
      const rest = Array.from({ length: 30 }, (_, i) => i + 71)
      t.strictSame(await recordAll(first), Array(70).fill('recorded'), 'a group of 70')
      t.strictSame(await recordAll(rest), Array(30).fill('recorded'), 'a group of 30')
      t.strictSame(await recordAll([5, 75]), ['duplicate', 'duplicate'], 'recorded once')
      const rows = await b.db.selectFrom('batch_results').select(['line', 'seq', 'kind', 'custom_id', 'result', 'usage_input_tokens', 'usage_total_tokens'])
        .where('batch_id', '=', id).orderBy('line').execute()
      t.strictSame(rows.map((r) => [Number(r.line), Number(r.seq), r.kind, r.custom_id, r.result, Number(r.usage_input_tokens), Number(r.usage_total_tokens)]),
        Array.from({ length: 100 }, (_, i) => [i + 1, Math.floor(i / 10), (i + 1) % 7 === 0 ? 'error' : 'output', `r${i + 1}`, `{"line":${i + 1}}`, i + 1, i + 2]),
        'each row holds its own values, in its own chunk')
    })

    t.test('many concurrent claims never hand one chunk to two claimers', async (t) => {
      const b = await makeDb(t)
      const q1 = createBatchQueue(b.db, b.dialect)
      const q2 = createBatchQueue(b.second, b.dialect)
      for (let i = 0; i < 4; i++) await runningBatch(b, `p${i % 2}`, 30)
      const claims = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? q1 : q2).claim(`r${i}`, 3, LONG)))
      // A claim racing others may return fewer than it asked for (rows another claimer
      // holds are skipped); whatever is left is claimed afterwards.
      for (let more = await q1.claim('drain', 50, LONG); more.length > 0; more = await q1.claim('drain', 50, LONG)) claims.push(more)
      const keys = claims.flat().map((c) => `${c.batchId}/${c.seq}`)
      t.equal(new Set(keys).size, keys.length, 'no chunk twice')
      t.equal(keys.length, 120, 'and every chunk once')
      t.ok(claims.flat().every((c) => c.epoch === 1), 'each at its first epoch')
      t.ok(claims.slice(0, 60).flat().length >= 60, 'the racing claims got most of them')
    })

    t.test('claims are fair: round-robin across projects, then across a project\'s batches', async (t) => {
      const b = await makeDb(t)
      const q = createBatchQueue(b.db, b.dialect)
      const big = await runningBatch(b, 'big', 10)
      const big2 = await runningBatch(b, 'big', 10)
      const small = await runningBatch(b, 'small', 2)
      const name = new Map([[big, 'big1'], [big2, 'big2'], [small, 'small']])
      const order: string[] = []
      for (let i = 0; i < 7; i++) {
        const [c] = await q.claim('A', 1, LONG) as [ClaimedChunk]
        order.push(`${name.get(c.batchId) ?? '?'}:${c.seq}`)
      }
      t.strictSame(order, ['big1:0', 'small:0', 'big2:0', 'small:1', 'big1:1', 'big2:1', 'big1:2'])
      const more = await q.claim('A', 4, LONG)
      t.strictSame(more.map((c) => name.get(c.batchId)).sort(), ['big1', 'big1', 'big2', 'big2'], 'one claim of four takes from both batches')
    })
  })
}
