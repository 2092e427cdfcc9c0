import { ListObjectsV2Command } from '@aws-sdk/client-s3'
import { sql } from 'kysely'
import t from 'tap'
import { NO_POSTGRES_REASON, testDatabaseUrl } from '../../helpers/postgres.js'
import { waitForExit } from '../../helpers/process.js'
import { bucketClient } from '../../helpers/s3-server.js'
import { assertExactlyOnce, resent, waitFor } from './process-helpers.js'
import { assertNothingLeft, deploy, LINES } from './replicas.js'

/**
 * Two replicas on one PostgreSQL and one bucket (replicas.ts); the one holding the batch
 * lease (worker_owner) while the batch is `finalizing` is SIGKILLed. The other takes the
 * batch lease once it lapses and finalizes again: one output file, every line once,
 * nothing re-sent, no part left.
 */
const serverUrl = testDatabaseUrl()

t.test('two replicas on one PostgreSQL and one bucket: SIGKILL the replica that is finalizing: the other finalizes again once the batch lease lapses; one output file, every line once', { skip: serverUrl === undefined ? NO_POSTGRES_REASON : false }, async (t) => {
  t.setTimeout(90_000)
  const TTL = 2000
  const d = await deploy(t, serverUrl!, TTL)
  const finalizing = await waitFor(d.tdb.db, d.batchId, (b) => b.status !== 'validating' && b.status !== 'in_progress', 40_000)
  const row = await d.tdb.db.selectFrom('batches').select('worker_owner').where('id', '=', d.batchId).executeTakeFirstOrThrow()
  const pid = Number(/-(\d+)-[0-9A-Z]{26}$/.exec(row.worker_owner ?? '')?.[1] ?? NaN)
  const victim = d.replicas.find((r) => r.child.pid === pid)
  if (finalizing.status !== 'finalizing' || victim === undefined) {
    // The finalize was over before the test saw it (a fast store): nothing to kill mid-way.
    t.pass(`not caught finalizing (status ${finalizing.status}, batch lease ${row.worker_owner}); skipped`, { skip: true })
    return
  }
  const survivor = d.replicas.find((r) => r !== victim)!
  const killedAt = Date.now()
  victim.child.kill('SIGKILL')
  await waitForExit(victim.child)
  const done = await waitFor(d.tdb.db, d.batchId, (b) => b.status === 'completed' || b.status === 'failed', 40_000)
  t.comment(`SIGKILL pid ${pid} while finalizing; kill to completed: ${Date.now() - killedAt} ms (lease ttl ${TTL})`)
  await assertExactlyOnce(t, survivor.url, done, LINES)
  t.equal(resent(d.upstream).lines, 0, 'nothing re-sent: every line was recorded before finalize')
  await assertNothingLeft(t, d)
  // The killed finalize may have left its half-made output object (object before row):
  // the reconciler's to remove, after its grace. Counted, not asserted.
  const objects = ((await bucketClient(d.s3, t).send(new ListObjectsV2Command({ Bucket: d.s3.bucket, Prefix: 'files/' }))).Contents ?? []).map((o) => o.Key)
  const { rows } = await sql<{ storage_key: string }>`select storage_key from files`.execute(d.tdb.db)
  const orphans = objects.filter((k) => k !== undefined && k !== 'files/.deployment' && !k.startsWith('files/batch-parts/') && !rows.some((r) => r.storage_key === k))
  t.comment(`objects without a row after the killed finalize: ${orphans.length} ${JSON.stringify(orphans)}`)
})
