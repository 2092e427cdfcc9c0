import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import BetterSqlite3 from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely'
import pg from 'pg'
import type { Test } from 'tap'
import { getBatch, insertBatch, type BatchRecord } from '../../../src/batches/batch-store.js'
import type { BatchDatabase, Dialect } from '../../../src/batches/tables.js'
import { newBatchId } from '../../../src/ids.js'
import { KEY_A } from '../../helpers/app.js'
import type { ControllableUpstream, SeenRequest } from '../helpers/controllable-upstream.js'
import { fileLines, PROJECT_A } from './helpers.js'

/**
 * Helpers for the batch tests that run the service as real processes (kill, stop,
 * cancel): the test opens its own connection on the service's database to insert the
 * batch row (the HTTP batch routes are built elsewhere) and to watch the batch and its
 * leases, while the processes do the work.
 */

/** API_KEYS for the service processes: KEY_A belongs to PROJECT_A, as in startServer. */
export const PROCESS_KEYS = `${KEY_A}=${PROJECT_A}`

export interface TestDb { db: Kysely<BatchDatabase>, dialect: Dialect }

/** The service's SQLite file (DATA_DIR/files.db), opened beside the running process as the file store opens it. */
export function openSqlite (t: Test, dataDir: string): TestDb {
  const sqlite = new BetterSqlite3(join(dataDir, 'files.db'))
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('busy_timeout = 5000')
  const db = new Kysely<BatchDatabase>({ dialect: new SqliteDialect({ database: sqlite }) })
  t.teardown(() => db.destroy())
  return { db, dialect: 'sqlite' }
}

export function openPostgres (t: Test, url: string): TestDb {
  // The database is dropped WITH (FORCE) in teardown; an idle pooled connection ended by
  // that must not crash the test.
  const db = new Kysely<BatchDatabase>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 3 }).on('error', () => {}) }) })
  t.teardown(() => db.destroy())
  return { db, dialect: 'postgres' }
}

/** A batch row in `validating`, as the create route makes it. */
export async function insertBatchRow ({ db, dialect }: TestDb, inputFileId: string): Promise<BatchRecord> {
  return await insertBatch(db, dialect, {
    id: newBatchId(),
    project: PROJECT_A,
    endpoint: '/v1/chat/completions',
    inputFileId,
    completionWindow: '24h',
    completionWindowSeconds: 86400
  })
}

export async function waitFor (db: Kysely<BatchDatabase>, id: string, done: (b: BatchRecord) => boolean, timeoutMs: number): Promise<BatchRecord> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const batch = await getBatch(db, id)
    if (batch !== null && done(batch)) return batch
    if (Date.now() > until) throw new Error(`batch ${id} did not get there in ${timeoutMs} ms: ${JSON.stringify(batch)}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** Lines with a result so far (live counts: completed chunks plus results recorded by running ones). */
export const answered = (b: BatchRecord): number => b.requestCounts.completed + b.requestCounts.failed

/** The line a request carries: chatLines' `prompt-i`. */
export function promptOf (r: SeenRequest): string {
  const body = r.body as { messages?: Array<{ content?: string }> } | null
  return body?.messages?.[0]?.content ?? '?'
}

/** How often the upstream received each line. */
export function sendsPerLine (requests: readonly SeenRequest[]): Map<string, number> {
  const sends = new Map<string, number>()
  for (const r of requests) sends.set(promptOf(r), (sends.get(promptOf(r)) ?? 0) + 1)
  return sends
}

/** Lines the upstream received more than once, and the extra requests in all. */
export function resent (upstream: ControllableUpstream): { lines: number, extraRequests: number, maxSends: number } {
  let lines = 0
  let extraRequests = 0
  let maxSends = 0
  for (const n of sendsPerLine(upstream.requests).values()) {
    if (n > 1) lines++
    extraRequests += n - 1
    maxSends = Math.max(maxSends, n)
  }
  return { lines, extraRequests, maxSends }
}

/**
 * Lines re-sent because of a stop at `at` (epoch ms): received before it and again after
 * it (before `until`). Each request is stamped when its body had arrived at the upstream.
 */
export function resentAcross (requests: readonly SeenRequest[], at: number, until = Infinity): number {
  const before = new Set(requests.filter((r) => r.at < at).map(promptOf))
  const after = new Set(requests.filter((r) => r.at >= at && r.at < until).map(promptOf))
  let n = 0
  for (const p of after) if (before.has(p)) n++
  return n
}

/** Leases held now on the batch's chunks, by owner pid (owners are `${hostname}-${pid}-…`). */
export async function leasesByPid (db: Kysely<BatchDatabase>, batchId: string): Promise<Map<number, number>> {
  const rows = await db.selectFrom('batch_chunks').select('lease_owner').where('batch_id', '=', batchId).where('state', '=', 'leased').execute()
  const byPid = new Map<number, number>()
  for (const { lease_owner: owner } of rows) {
    const pid = Number(/-(\d+)-[0-9A-Z]{26}$/.exec(owner ?? '')?.[1] ?? NaN)
    byPid.set(pid, (byPid.get(pid) ?? 0) + 1)
  }
  return byPid
}

/**
 * Downloads both result files over `url` and asserts every custom id 1…n exactly once
 * across them, the counts exact, and each line's status where it belongs; returns the
 * output file's custom ids.
 */
export async function assertExactlyOnce (t: Test, url: string, batch: BatchRecord, n: number): Promise<string[]> {
  t.equal(batch.status, 'completed')
  t.same(batch.requestCounts, { total: n, completed: n, failed: 0 }, 'request_counts exact')
  t.equal(batch.usage.totalTokens, 2 * n, 'usage summed once per line')
  t.not(batch.outputFileId, null)
  const output = await fileLines(url, batch.outputFileId!)
  const errors = batch.errorFileId === null ? [] : await fileLines(url, batch.errorFileId)
  const ids = [...output, ...errors].map((l) => String(l.custom_id))
  const seen = new Map<string, number>()
  for (const id of ids) seen.set(id, (seen.get(id) ?? 0) + 1)
  const twice = [...seen].filter(([, c]) => c > 1).map(([id]) => id)
  const missing = Array.from({ length: n }, (_, i) => `req-${i + 1}`).filter((id) => !seen.has(id))
  t.same({ lines: ids.length, twice, missing }, { lines: n, twice: [], missing: [] }, 'every custom_id exactly once across output and error files')
  t.ok(output.every((l) => (l.response as { status_code?: number } | null)?.status_code === 200), 'every output line is a 200')
  // Line order within the output file: chunks are assembled in seq order, lines in line order.
  t.same(output.map((l) => l.custom_id), Array.from({ length: n }, (_, i) => `req-${i + 1}`), 'output in line order')
  return output.map((l) => String(l.custom_id))
}

/**
 * Polls `list` until it is empty or `timeoutMs` passed; returns the last listing. Parts
 * are removed after the batch row says completed (result-files.ts: the files are
 * recorded first), so a test that looks at once may still see them go.
 */
export async function untilEmpty (list: () => Promise<string[]>, timeoutMs = 10_000): Promise<string[]> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const left = await list()
    if (left.length === 0 || Date.now() > until) return left
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** Every file under `dir` (recursively), relative; [] when it does not exist. */
export async function filesUnder (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return []
    throw error
  })
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
}

export { fileLines, KEY_A }
