import t from 'tap'
import { LeaseLostError } from '../../src/batches/lease.js'
import { createBatchQueue } from '../../src/batches/queue.js'
import { createBatchResults } from '../../src/batches/results.js'
import { freshDatabase, NO_POSTGRES_REASON, testDatabaseUrl } from '../helpers/postgres.js'
import { postgresBatchDb } from './helpers/batch-db.js'
import { runLifecycleContract } from './lifecycle-contract.js'
import { leaseOf, runningBatch, runQueueContract } from './queue-contract.js'

const serverUrl = testDatabaseUrl()

if (serverUrl === undefined) {
  t.test('batch queue on postgres', { skip: NO_POSTGRES_REASON }, async () => {})
} else {
  runQueueContract(t, 'batch queue on postgres', async (t) => postgresBatchDb(t, await freshDatabase(t, serverUrl)))
  runLifecycleContract(t, 'batch lifecycle on postgres', async (t) => postgresBatchDb(t, await freshDatabase(t, serverUrl)))
}

if (serverUrl !== undefined) {
  t.test('postgres: 16 workers on two pools with short leases and stalls: each line recorded once, no live lease stolen', async (t) => {
    const b = await postgresBatchDb(t, await freshDatabase(t, serverUrl))
    const ids: string[] = []
    for (let i = 0; i < 4; i++) ids.push(await runningBatch(b, `p${i % 2}`, 10))
    const TTL = 250
    const recorded = new Map<string, number>()
    const completes = new Map<string, number>()
    // Per chunk: epoch → the database time it was claimed at, and the latest expiry a renew of it confirmed.
    const claimedAt = new Map<string, Map<number, number>>()
    const confirmedUntil = new Map<string, Map<number, number>>()
    let lost = 0
    const sleep = async (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
    const at = <V>(m: Map<string, Map<number, V>>, k: string) => m.get(k) ?? m.set(k, new Map()).get(k) as Map<number, V>

    async function worker (n: number): Promise<void> {
      const db = n % 2 === 0 ? b.db : b.second
      const q = createBatchQueue(db, 'postgres')
      const results = createBatchResults(db, 'postgres')
      let idle = 0
      while (idle < 15) {
        const claimed = await q.claim(`w${n}`, 2, TTL)
        if (claimed.length === 0) { idle++; await sleep(30); continue }
        idle = 0
        for (const c of claimed) {
          const key = `${c.batchId}/${c.seq}`
          t.notOk(at(claimedAt, key).has(c.epoch), `${key} epoch ${c.epoch} handed out once`)
          at(claimedAt, key).set(c.epoch, c.leaseExpiresAtMs - TTL)
          at(confirmedUntil, key).set(c.epoch, c.leaseExpiresAtMs)
          try {
            const done = new Set(await results.recordedLines(c.batchId, c.seq))
            for (let line = c.lineStart; line < c.lineEnd; line++) {
              if (done.has(line)) continue
              // Now and then a holder stalls past its lease (a GC pause, a partition).
              await sleep(Math.random() < 0.04 ? TTL * 2 : Math.floor(Math.random() * 15))
              const outcome = await results.record(leaseOf(c), { line, customId: `c${line}`, kind: 'output', result: `r${line}` })
              if (outcome === 'recorded') recorded.set(`${c.batchId}/${line}`, (recorded.get(`${c.batchId}/${line}`) ?? 0) + 1)
              if (line % 3 === 0) at(confirmedUntil, key).set(c.epoch, await q.renew(leaseOf(c), TTL))
            }
            await q.complete(leaseOf(c))
            completes.set(key, (completes.get(key) ?? 0) + 1)
          } catch (err) {
            if (!(err instanceof LeaseLostError)) throw err
            lost++
          }
        }
      }
    }
    await Promise.all(Array.from({ length: 16 }, async (_, n) => worker(n)))

    t.equal(completes.size, 40, 'every chunk completed')
    t.ok([...completes.values()].every((n) => n === 1), 'each exactly once')
    t.equal(recorded.size, 400, 'every line recorded')
    t.ok([...recorded.values()].every((n) => n === 1), 'each exactly once')
    for (const id of ids) {
      const row = await b.db.selectFrom('batches').select(['request_completed']).where('id', '=', id).executeTakeFirstOrThrow()
      t.equal(Number(row.request_completed), 100, 'the batch counted each line once')
      t.equal(await b.db.selectFrom('batch_results').select('line').where('batch_id', '=', id).execute().then((r) => r.length), 0, 'no result row left behind')
    }
    for (const [key, epochs] of claimedAt) {
      const sorted = [...epochs.keys()].sort((x, y) => x - y)
      t.strictSame(sorted, sorted.map((_, i) => i + 1), `${key}: epochs 1..n, none skipped or repeated`)
      for (const e of sorted.slice(1)) {
        const previousUntil = confirmedUntil.get(key)?.get(e - 1) ?? Infinity
        t.ok((epochs.get(e) ?? 0) > previousUntil, `${key}: epoch ${e} claimed after epoch ${e - 1}'s last confirmed expiry`)
      }
    }
    t.comment(`leases lost to takeovers: ${lost}`)
  })
}
