import t from 'tap'
import { NO_POSTGRES_REASON, testDatabaseUrl } from '../../helpers/postgres.js'
import { waitForExit, type ServiceProcess } from '../../helpers/process.js'
import { answered, assertExactlyOnce, leasesByPid, resent, waitFor } from './process-helpers.js'
import { assertNothingLeft, CONCURRENCY, deploy, inFlightAt, LINES, requestsOf, resentByOther, resentDetail, type Deployment } from './replicas.js'

/**
 * Issue 10 item 8: two service processes on one PostgreSQL database and one bucket
 * (versitygw, or s3rver without S3_TEST_ENDPOINT), one upstream. The batch row is
 * inserted directly; either replica (usually both) takes its chunks. Mid-run, the
 * replica holding the most leases is SIGKILLed (its leases lapse after the ttl and the
 * other takes them over) or SIGTERMed (it hands them back at once) (kill-finalizing.test.ts
 * kills the one finalizing).
 */

/** Once `answered` lines have results: the replica holding the most of the batch's leases, and how many it holds. */
async function busiestAfter (d: Deployment, lines: number): Promise<{ victim: ServiceProcess, survivor: ServiceProcess, leases: Map<number, number> }> {
  await waitFor(d.tdb.db, d.batchId, (b) => answered(b) >= lines, 40_000)
  for (let i = 0; i < 200; i++) {
    const leases = await leasesByPid(d.tdb.db, d.batchId)
    const [a, b] = d.replicas as [ServiceProcess, ServiceProcess]
    const la = leases.get(a.child.pid!) ?? 0
    const lb = leases.get(b.child.pid!) ?? 0
    if (la + lb > 0) return la >= lb ? { victim: a, survivor: b, leases } : { victim: b, survivor: a, leases }
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error('no replica holds a lease on the batch')
}

const serverUrl = testDatabaseUrl()

t.test('two replicas on one PostgreSQL and one bucket', { skip: serverUrl === undefined ? NO_POSTGRES_REASON : false }, async (t) => {
  // Two deployments of two processes each: about 15 s apiece on a quiet machine, several
  // times that on a loaded one (process start-up through tsx dominates).
  t.setTimeout(200_000)

  t.test('SIGKILL the replica holding leases mid-run: the other takes them over when they lapse; every line once, re-sent ≤ BATCH_CONCURRENCY', async (t) => {
    t.setTimeout(90_000)
    const TTL = 2000
    const d = await deploy(t, serverUrl!, TTL)
    const { victim, survivor, leases } = await busiestAfter(d, 120)
    const killedAt = Date.now()
    victim.child.kill('SIGKILL')
    await waitForExit(victim.child)
    const mid = await waitFor(d.tdb.db, d.batchId, () => true, 1000)
    t.ok(answered(mid) < LINES, `killed mid-run: ${answered(mid)} of ${LINES} answered`)

    const done = await waitFor(d.tdb.db, d.batchId, (b) => b.status === 'completed' || b.status === 'failed', 40_000)
    const finishedIn = Date.now() - killedAt
    await assertExactlyOnce(t, survivor.url, done, LINES)
    const r = resent(d.upstream)
    const byOther = resentByOther(d, victim, killedAt)
    const victimInFlight = inFlightAt(requestsOf(d, victim), killedAt)
    t.comment(`SIGKILL pid ${victim.child.pid} holding ${leases.get(victim.child.pid!)} leases (by pid: ${JSON.stringify([...leases])}), ${victimInFlight} of its requests unanswered at the upstream then or sent after; re-sent lines: ${r.lines} (extra requests ${r.extraRequests}, ${byOther} sent by the survivor after the victim); kill to completed: ${finishedIn} ms (lease ttl ${TTL})`)
    t.ok(r.lines <= CONCURRENCY, `re-sent lines ${r.lines} ≤ BATCH_CONCURRENCY ${CONCURRENCY} of the killed replica`)
    t.equal(r.extraRequests, byOther, 'every extra request is a line the killed replica had sent, sent again by the survivor')
    if (r.extraRequests !== byOther) t.comment(resentDetail(d, killedAt))
    t.equal(d.upstream.requests.length, LINES + r.extraRequests)
    // The killed replica's chunks were taken over: claimed again (attempts > 1) by the survivor.
    const takenOver = await d.tdb.db.selectFrom('batch_chunks').select('seq').where('batch_id', '=', d.batchId).where('attempts', '>', 1).execute()
    t.ok(takenOver.length >= 1, `${takenOver.length} chunk(s) claimed again after the kill`)
    await assertNothingLeft(t, d)
  })

  t.test('SIGTERM one replica mid-run: it hands its leases back at once, the other finishes well before the lease ttl; re-sent ≤ its in-flight', async (t) => {
    t.setTimeout(90_000)
    const TTL = 30_000
    const d = await deploy(t, serverUrl!, TTL)
    const { victim, survivor, leases } = await busiestAfter(d, 120)
    const abortedBefore = d.upstream.abortedRequests()
    const stoppedAt = Date.now()
    victim.child.kill('SIGTERM')
    await waitForExit(victim.child)
    const exitedIn = Date.now() - stoppedAt
    t.equal(victim.child.exitCode, 0, `the stopped replica exited cleanly (in ${exitedIn} ms)`)
    const handedBack = await d.tdb.db.selectFrom('batch_chunks').select('seq').where('batch_id', '=', d.batchId)
      .where('lease_owner', 'like', `%-${victim.child.pid}-%`).execute()
    t.same(handedBack, [], 'no lease left in the stopped replica\'s name')

    const done = await waitFor(d.tdb.db, d.batchId, (b) => b.status === 'completed' || b.status === 'failed', 20_000)
    const finishedIn = Date.now() - stoppedAt
    t.ok(finishedIn < TTL / 3, `completed ${finishedIn} ms after SIGTERM, well before the lease ttl (${TTL} ms)`)
    await assertExactlyOnce(t, survivor.url, done, LINES)
    const r = resent(d.upstream)
    const aborted = d.upstream.abortedRequests() - abortedBefore
    const byOther = resentByOther(d, victim, stoppedAt)
    const victimInFlight = inFlightAt(requestsOf(d, victim), stoppedAt)
    t.comment(`SIGTERM pid ${victim.child.pid} holding ${leases.get(victim.child.pid!)} leases (by pid: ${JSON.stringify([...leases])}), ${victimInFlight} of its requests unanswered at the upstream then or sent after, ${aborted} aborted; re-sent lines: ${r.lines} (extra requests ${r.extraRequests}, ${byOther} sent by the survivor after the victim); exit in ${exitedIn} ms, SIGTERM to completed: ${finishedIn} ms (lease ttl ${TTL})`)
    t.ok(r.lines <= CONCURRENCY, `re-sent lines ${r.lines} ≤ BATCH_CONCURRENCY ${CONCURRENCY}`)
    t.ok(r.lines <= victimInFlight, `re-sent lines ${r.lines} ≤ the stopping replica's requests in flight at SIGTERM or sent after it (${victimInFlight})`)
    t.equal(r.extraRequests, byOther, 'every extra request is a line the stopped replica had sent, sent again by the other')
    if (r.extraRequests !== byOther || r.lines > victimInFlight) t.comment(resentDetail(d, stoppedAt))
    await assertNothingLeft(t, d)
  })

})
