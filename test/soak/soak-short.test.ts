import t from 'tap'
import { KEY_A } from '../helpers/app.js'
import { startServiceProcess } from '../helpers/process.js'
import { judgeSoak } from './helpers/soak-report.js'
import { runSoak } from './helpers/soak-run.js'
import { MiB } from './helpers/soak-stats.js'

// The CI version of `npm run soak` (bench/soak.ts, 300 s by default): the same load and
// checks for SOAK_SECONDS (20 by default), with looser drift bounds, since a short run
// on a shared machine is noisier and still warming up.
const SECONDS = Number(process.env.SOAK_SECONDS ?? 20)

t.test(`soak, ${SECONDS} s: no unexpected answer, stored bytes intact, RSS and descriptors flat`, { timeout: (SECONDS + 90) * 1000 }, async (t) => {
  const service = await startServiceProcess(t, {
    DATA_DIR: t.testdir({}),
    API_KEYS: `${KEY_A}=soak`,
    LOG_LEVEL: 'warn'
  })
  const pid = service.child.pid
  if (pid === undefined) throw new Error('no pid')
  const result = await runSoak({ url: service.url, pid, key: KEY_A, seconds: SECONDS, concurrency: 6 })
  const verdict = judgeSoak(result, {
    rss: { absolute: 48 * MiB, relative: 0.3 },
    fds: { absolute: 12, relative: 0 },
    p99Ms: 3000
  })
  t.comment(verdict.text)

  t.same(result.unexpected, [], 'every answer as expected: invalid files refused with exactly their error')
  t.ok(result.stored > 0, `${result.stored} files still stored at the end`)
  t.equal(result.verified, result.stored, 'each of them byte-exact (sha256)')
  for (const kind of ['upload_batch', 'upload_invalid', 'upload_user_data', 'list', 'retrieve', 'content', 'delete']) {
    t.ok((result.latencies.get(kind as never)?.length ?? 0) > 10, `${kind}: exercised (${result.latencies.get(kind as never)?.length ?? 0})`)
  }
  t.ok(verdict.requests > SECONDS * 10, `${verdict.requests} requests`)
  t.ok(result.samples.length >= SECONDS - 1, `${result.samples.length} samples, one a second`)
  t.ok(verdict.rssDrift.ok, `RSS flat: ${(verdict.rssDrift.growth / MiB).toFixed(1)} MiB growth, ${(verdict.rssDrift.allowed / MiB).toFixed(1)} allowed`)
  t.ok(verdict.fdDrift.ok, `descriptors flat: ${verdict.fdDrift.growth} growth, ${verdict.fdDrift.allowed} allowed`)
  t.ok(verdict.p99Ms <= 3000, `p99 ${verdict.p99Ms.toFixed(1)} ms`)
  t.equal((await fetch(`${service.url}/health`)).status, 200, 'healthy afterwards')
})
