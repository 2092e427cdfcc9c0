import type { Test } from 'tap'
import { monotonicFactory } from 'ulid'
import { getBatch, insertBatch } from '../../src/batches/batch-store.js'
import { ALLOWED_FROM, BATCH_STATUSES, canTransition, transitionBatch, type BatchStatus } from '../../src/batches/lifecycle.js'
import { databaseNowSeconds, type BatchDb, type MakeBatchDb } from './helpers/batch-db.js'

const nextId = monotonicFactory()

async function newBatch (b: BatchDb, project = 'p'): Promise<string> {
  const id = `batch_${nextId()}`
  await insertBatch(b.db, b.dialect, {
    id, project, endpoint: '/v1/embeddings', inputFileId: 'file-in', completionWindow: '24h', completionWindowSeconds: 86_400,
    metadata: { k: 'v' }
  })
  return id
}

export function runLifecycleContract (t: Test, name: string, makeDb: MakeBatchDb): void {
  t.test(name, async (t) => {
    t.test('the happy path stamps each *_at from the database clock, in the same statement', async (t) => {
      const b = await makeDb(t)
      const before = await databaseNowSeconds(b)
      // This process's clock a day off: every timestamp must still be the database's.
      const realNow = Date.now
      Date.now = () => realNow() - 86_400_000
      let id: string
      try {
        id = await newBatch(b)
        t.strictSame(await transitionBatch(b.db, b.dialect, { id }, 'in_progress', { requestTotal: 7 }).then((r) => r?.status), 'in_progress')
        t.ok(await transitionBatch(b.db, b.dialect, { id }, 'finalizing'))
        t.ok(await transitionBatch(b.db, b.dialect, { id }, 'completed', { outputFileId: 'file-out', errorFileId: null }))
      } finally {
        Date.now = realNow
      }
      const after = await databaseNowSeconds(b)
      const batch = await getBatch(b.db, id, 'p')
      t.equal(batch?.status, 'completed')
      for (const at of [batch?.createdAt, batch?.inProgressAt, batch?.finalizingAt, batch?.completedAt]) {
        t.ok(at !== undefined && at !== null && at >= before && at <= after, `timestamp ${at} within the database's [${before}, ${after}]`)
      }
      t.equal(batch?.expiresAt, (batch?.createdAt ?? 0) + 86_400, 'expires_at = created_at + the window')
      t.strictSame([batch?.failedAt, batch?.expiredAt, batch?.cancellingAt, batch?.cancelledAt], [null, null, null, null])
      t.strictSame([batch?.requestCounts.total, batch?.outputFileId, batch?.errorFileId, batch?.metadata], [7, 'file-out', null, { k: 'v' }])
    })

    t.test('every pair of statuses: allowed exactly as the table says, refused ones change nothing', async (t) => {
      const b = await makeDb(t)
      for (const from of BATCH_STATUSES) {
        for (const to of BATCH_STATUSES) {
          if (to === 'validating') continue
          const id = await newBatch(b)
          // Setup only: put the batch straight into `from`.
          await b.db.updateTable('batches').set({ status: from }).where('id', '=', id).execute()
          const result = await transitionBatch(b.db, b.dialect, { id }, to)
          const batch = await getBatch(b.db, id)
          if (canTransition(from, to)) {
            t.equal(result?.status, to, `${from} → ${to} allowed`)
            t.equal(batch?.status, to)
          } else {
            t.equal(result, null, `${from} → ${to} refused`)
            t.equal(batch?.status, from, 'status unchanged')
            t.strictSame([batch?.inProgressAt, batch?.completedAt, batch?.cancelledAt, batch?.failedAt], [null, null, null, null], 'no timestamp written')
          }
        }
      }
      t.strictSame(ALLOWED_FROM.cancelling, ['validating', 'in_progress'], 'a cancel after the lines ran is refused, never stuck')
    })

    t.test('two racing transitions from one status: exactly one wins', async (t) => {
      const b = await makeDb(t)
      const id = await newBatch(b)
      await transitionBatch(b.db, b.dialect, { id }, 'in_progress')
      const racers: BatchStatus[] = ['finalizing', 'cancelling', 'expired', 'finalizing', 'cancelling', 'expired']
      const results = await Promise.all(racers.map(async (to, i) => transitionBatch(i % 2 === 0 ? b.db : b.second, b.dialect, { id }, to)))
      const winners = results.filter((r) => r !== null)
      t.equal(winners.length, 1, 'one transition out of in_progress')
      t.equal((await getBatch(b.db, id))?.status, winners[0]?.status)
    })

    t.test('a transition scoped to a project does not touch another project\'s batch', async (t) => {
      const b = await makeDb(t)
      const id = await newBatch(b, 'owner')
      t.equal(await transitionBatch(b.db, b.dialect, { id, project: 'other' }, 'cancelling'), null)
      t.equal(await getBatch(b.db, id, 'other'), null, 'not visible to another project')
      t.equal((await getBatch(b.db, id, 'owner'))?.status, 'validating')
      t.equal((await transitionBatch(b.db, b.dialect, { id, project: 'owner' }, 'cancelling'))?.status, 'cancelling')
      t.equal(await transitionBatch(b.db, b.dialect, { id: 'batch_missing' }, 'in_progress'), null, 'a missing batch')
      await t.rejects(transitionBatch(b.db, b.dialect, { id }, 'validating'), RangeError)
    })
  })
}
