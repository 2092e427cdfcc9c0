import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import type { Test } from 'tap'
import { freshDatabase } from '../../helpers/postgres.js'
import { startServiceProcess, type ServiceProcess } from '../../helpers/process.js'
import { bucketClient, serviceEnv, startS3Server } from '../../helpers/s3-server.js'
import { startControllableUpstream, type ControllableUpstream, type SeenRequest } from '../helpers/controllable-upstream.js'
import { chatLines, uploadBatchFile } from './helpers.js'
import { insertBatchRow, openPostgres, PROCESS_KEYS, promptOf, untilEmpty, type TestDb } from './process-helpers.js'

/**
 * Two service processes on one PostgreSQL database and one bucket (versitygw, or s3rver
 * without S3_TEST_ENDPOINT), one controllable upstream, and a batch row inserted
 * directly: the deployment of the kill, stop and cancel tests with replicas.
 */

export const LINES = 400
export const CONCURRENCY = 16
export const CHUNK_LINES = 20

export interface Deployment {
  upstream: ControllableUpstream
  replicas: ServiceProcess[]
  tdb: TestDb
  s3: Awaited<ReturnType<typeof startS3Server>>
  batchId: string
}

export async function deploy (t: Test, serverUrl: string, leaseTtlMs: number): Promise<Deployment> {
  const upstream = await startControllableUpstream()
  t.teardown(() => upstream.close())
  // 400 lines / 32 in flight (two replicas) × 100 ms ≈ 1.3 s of sending: the stop lands mid-run.
  upstream.setFallback({ latencyMs: 100 })
  const databaseUrl = await freshDatabase(t, serverUrl)
  const s3 = await startS3Server(t)
  const env = {
    DATABASE_URL: databaseUrl,
    ...serviceEnv(s3),
    API_KEYS: PROCESS_KEYS,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    BATCH_CONCURRENCY: String(CONCURRENCY),
    BATCH_CHUNK_LINES: String(CHUNK_LINES),
    BATCH_LEASE_TTL_MS: String(leaseTtlMs),
    BATCH_POLL_INTERVAL_MS: '100'
  }
  // Both start together, each with a DATA_DIR of its own: nothing shared but the database
  // and the bucket. Each reaches the upstream under a path of its own (/r0/v1, /r1/v1; the
  // double answers any path), so the test can tell whose request the upstream received.
  const dirs = t.testdir({ r0: {}, r1: {} })
  const replicas = await Promise.all([0, 1].map(async (i) => await startServiceProcess(t, { ...env, DATA_DIR: `${dirs}/r${i}`, UPSTREAM_BASE_URL: `${upstream.url}/r${i}/v1` })))
  const fileId = await uploadBatchFile(replicas[0]!.url, chatLines(LINES))
  const tdb = openPostgres(t, databaseUrl)
  const created = await insertBatchRow(tdb, fileId)
  return { upstream, replicas, tdb, s3, batchId: created.id }
}

/** Replica i's requests (by the path it reaches the upstream under). */
export function requestsOf (d: Deployment, victim: ServiceProcess): SeenRequest[] {
  const prefix = `/r${d.replicas.indexOf(victim)}/`
  return d.upstream.requests.filter((r) => r.url.startsWith(prefix))
}

/**
 * The victim's requests still in flight at `at` or sent after it: received by the
 * upstream and not yet finished then. A replica goes on sending between SIGTERM and its
 * engine's stop, so those count too.
 */
export function inFlightAt (requests: readonly SeenRequest[], at: number): number {
  return requests.filter((r) => r.finishedAt === undefined || r.finishedAt >= at).length
}

/** Lines the victim sent that the other replica sent again after `at`. */
export function resentByOther (d: Deployment, victim: ServiceProcess, at: number): number {
  const victims = requestsOf(d, victim)
  const mine = new Set(victims.map(promptOf))
  const other = d.upstream.requests.filter((r) => !victims.includes(r) && r.at >= at).map(promptOf)
  return new Set(other.filter((p) => mine.has(p))).size
}

/** Each line sent more than once: who sent it when (ms from `at`; a negative finish: answered before it). */
export function resentDetail (d: Deployment, at: number): string {
  const byLine = new Map<string, string[]>()
  for (const r of d.upstream.requests) {
    const list = byLine.get(promptOf(r)) ?? []
    list.push(`${r.url.split('/')[1]}@${r.at - at}..${r.finishedAt === undefined ? '?' : r.finishedAt - at}`)
    byLine.set(promptOf(r), list)
  }
  return [...byLine].filter(([, l]) => l.length > 1).map(([p, l]) => `${p}: ${l.join(' ')}`).join('; ')
}

/** No part object or unfinished upload of parts in the bucket, no recorded row, every chunk done (or in `chunkStates`). */
export async function assertNothingLeft (t: Test, d: Deployment, chunkStates?: string[]): Promise<void> {
  const client = bucketClient(d.s3, t)
  const parts = async (): Promise<string[]> => ((await client.send(new ListObjectsV2Command({ Bucket: d.s3.bucket, Prefix: 'files/batch-parts/' }))).Contents ?? []).map((o) => o.Key ?? '')
  t.same(await untilEmpty(parts), [], 'no parts left in the bucket under files/batch-parts/')
  const uploads = (await client.send(new ListMultipartUploadsCommand({ Bucket: d.s3.bucket, Prefix: 'files/batch-parts/' })).catch(() => ({ Uploads: undefined }))).Uploads ?? []
  t.comment(`unfinished multipart uploads under files/batch-parts/: ${uploads.length}`)
  t.same(await d.tdb.db.selectFrom('batch_results').selectAll().execute(), [], 'no recorded rows left')
  const states = await d.tdb.db.selectFrom('batch_chunks').select('state').where('batch_id', '=', d.batchId).orderBy('seq').execute()
  if (chunkStates === undefined) t.same(states.map((s) => s.state), Array(LINES / CHUNK_LINES).fill('done'), 'every chunk done')
  else t.same([...new Set(states.map((s) => s.state))], chunkStates, `chunk states: ${chunkStates.join(', ')}`)
}
