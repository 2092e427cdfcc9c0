import { sql, type Kysely } from 'kysely'
import { dbNowSeconds } from './db-clock.js'
import type { BatchDatabase, Dialect } from './tables.js'

/** OpenAI's batch statuses (../shared/openai-spec/batches.json). */
export const BATCH_STATUSES = [
  'validating', 'failed', 'in_progress', 'finalizing', 'completed', 'expired', 'cancelling', 'cancelled'
] as const
export type BatchStatus = typeof BATCH_STATUSES[number]

/** The statuses a batch may enter from (status → the statuses it may come from). */
export const ALLOWED_FROM: Readonly<Record<BatchStatus, readonly BatchStatus[]>> = {
  validating: [],
  in_progress: ['validating'],
  // Only a running batch finalizes: a cancelled or expired one is finalized into its own
  // terminal status by the engine (results kept), never into `completed`.
  finalizing: ['in_progress'],
  completed: ['finalizing'],
  // The input cannot run (validating), or the batch cannot be finished at all.
  failed: ['validating', 'in_progress', 'finalizing'],
  // Not from finalizing: every line has run by then, and a cancel that arrives while the
  // outputs are written must not leave the batch stuck in `cancelling` (llm-d #146);
  // the route answers with the batch as it is.
  cancelling: ['validating', 'in_progress'],
  cancelled: ['cancelling'],
  // Past the completion window. A cancelling batch finishes as cancelled instead.
  expired: ['validating', 'in_progress']
}

/** The column each status stamps when entered; validating's is created_at, set on insert. */
const STAMP = {
  in_progress: 'in_progress_at',
  finalizing: 'finalizing_at',
  completed: 'completed_at',
  failed: 'failed_at',
  expired: 'expired_at',
  cancelling: 'cancelling_at',
  cancelled: 'cancelled_at'
} as const satisfies Record<Exclude<BatchStatus, 'validating'>, string>

export function isTerminal (status: BatchStatus): boolean {
  return status === 'completed' || status === 'failed' || status === 'expired' || status === 'cancelled'
}

export function canTransition (from: BatchStatus, to: BatchStatus): boolean {
  return ALLOWED_FROM[to].includes(from)
}

/** OpenAI's `errors` object of a failed batch with one error, JSON-encoded for the batch row. */
export function batchErrors (code: string, message: string, param: string | null, line: number | null): string {
  return JSON.stringify({ object: 'list', data: [{ code, message, param, line }] })
}

/** What the transition writes beside the status, in the same statement. */
export interface TransitionFields {
  /** OpenAI's errors object, JSON-encoded by the caller's schema; for `failed`. */
  errors?: string
  outputFileId?: string | null
  errorFileId?: string | null
  /** Set when planning finished (validating → in_progress). */
  requestTotal?: number
}

export interface TransitionResult {
  status: BatchStatus
  /** The timestamp the transition wrote (unix seconds, database clock). */
  at: number
}

/**
 * Moves a batch to `to` if, and only if, its current status allows it, stamping
 * `<to>_at` from the database clock in the same UPDATE: two replicas racing (a cancel
 * and a finalize, two expiry sweeps) cannot both win, and no status exists without its
 * timestamp. Returns null when refused (not found, another project's, or not allowed
 * from its current status); the caller re-reads the batch to answer.
 */
export async function transitionBatch (db: Kysely<BatchDatabase>, dialect: Dialect, target: { id: string, project?: string, workerOwner?: string },
  to: BatchStatus, fields: TransitionFields = {}): Promise<TransitionResult | null> {
  if (to === 'validating') throw new RangeError('a batch is created validating; it never returns to it')
  const from = ALLOWED_FROM[to]
  const stamp = STAMP[to]
  const now = dbNowSeconds(dialect)
  let update = db
    .updateTable('batches')
    .set({ status: to, [stamp]: now })
    .where('id', '=', target.id)
    .where('status', 'in', [...from])
  if (target.project !== undefined) update = update.where('project', '=', target.project)
  // The batch-level lease (batch-tasks.ts): a planner or finalizer whose lease another
  // replica took over changes nothing.
  if (target.workerOwner !== undefined) update = update.where('worker_owner', '=', target.workerOwner)
  if (fields.errors !== undefined) update = update.set({ errors: fields.errors })
  if (fields.outputFileId !== undefined) update = update.set({ output_file_id: fields.outputFileId })
  if (fields.errorFileId !== undefined) update = update.set({ error_file_id: fields.errorFileId })
  if (fields.requestTotal !== undefined) update = update.set({ request_total: fields.requestTotal })
  const row = await update.returning(sql<number | string>`${sql.ref(stamp)}`.as('at')).executeTakeFirst()
  return row === undefined ? null : { status: to, at: Number(row.at) }
}
