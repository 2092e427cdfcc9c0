import { sql, type Kysely, type Selectable } from 'kysely'
import { dbNowSeconds } from './db-clock.js'
import type { BatchStatus } from './lifecycle.js'
import { toNumber, toNumberOrNull, type BatchDatabase, type BatchesTable, type Dialect } from './tables.js'

/** A batch row, in the units of OpenAI's Batch object (unix seconds). */
export interface BatchRecord {
  id: string
  project: string
  status: BatchStatus
  endpoint: string
  model: string | null
  inputFileId: string
  completionWindow: string
  metadata: Record<string, string> | null
  outputExpiresAfterSeconds: number | null
  requestCounts: { total: number, completed: number, failed: number }
  usage: { inputTokens: number, cachedTokens: number, outputTokens: number, reasoningTokens: number, totalTokens: number }
  /** Requests re-sent to the upstream for the batch's recorded lines (not an OpenAI field). */
  upstreamRetries: number
  createdAt: number
  inProgressAt: number | null
  finalizingAt: number | null
  completedAt: number | null
  failedAt: number | null
  expiredAt: number | null
  cancellingAt: number | null
  cancelledAt: number | null
  expiresAt: number | null
  outputFileId: string | null
  errorFileId: string | null
  /** The errors object's JSON as stored (the route's schema owns its shape). */
  errors: string | null
}

export interface NewBatch {
  id: string
  project: string
  endpoint: string
  model?: string | null
  inputFileId: string
  completionWindow: string
  /** Seconds after created_at (database clock) at which the batch expires: the completion window. */
  completionWindowSeconds: number
  metadata?: Record<string, string> | null
  outputExpiresAfterSeconds?: number | null
}

function rowToBatch (row: Selectable<BatchesTable>): BatchRecord {
  return {
    id: row.id,
    project: row.project,
    // Only insertBatch and transitionBatch write status, always a BatchStatus.
    status: row.status as BatchStatus,
    endpoint: row.endpoint,
    model: row.model,
    inputFileId: row.input_file_id,
    completionWindow: row.completion_window,
    metadata: row.metadata === null ? null : JSON.parse(row.metadata) as Record<string, string>,
    outputExpiresAfterSeconds: toNumberOrNull(row.output_expires_after_seconds),
    requestCounts: { total: toNumber(row.request_total), completed: toNumber(row.request_completed), failed: toNumber(row.request_failed) },
    usage: {
      inputTokens: toNumber(row.usage_input_tokens),
      cachedTokens: toNumber(row.usage_cached_tokens),
      outputTokens: toNumber(row.usage_output_tokens),
      reasoningTokens: toNumber(row.usage_reasoning_tokens),
      totalTokens: toNumber(row.usage_total_tokens)
    },
    upstreamRetries: toNumber(row.upstream_retries),
    createdAt: toNumber(row.created_at),
    inProgressAt: toNumberOrNull(row.in_progress_at),
    finalizingAt: toNumberOrNull(row.finalizing_at),
    completedAt: toNumberOrNull(row.completed_at),
    failedAt: toNumberOrNull(row.failed_at),
    expiredAt: toNumberOrNull(row.expired_at),
    cancellingAt: toNumberOrNull(row.cancelling_at),
    cancelledAt: toNumberOrNull(row.cancelled_at),
    expiresAt: toNumberOrNull(row.expires_at),
    outputFileId: row.output_file_id,
    errorFileId: row.error_file_id,
    errors: row.errors
  }
}

/** Inserts a batch in `validating`; created_at and expires_at come from the database clock. */
export async function insertBatch (db: Kysely<BatchDatabase>, dialect: Dialect, batch: NewBatch): Promise<BatchRecord> {
  if (!Number.isSafeInteger(batch.completionWindowSeconds) || batch.completionWindowSeconds < 1) {
    throw new RangeError(`completion window must be a positive number of seconds, got ${batch.completionWindowSeconds}`)
  }
  const now = dbNowSeconds(dialect)
  const row = await db
    .insertInto('batches')
    .values((eb) => ({
      id: batch.id,
      project: batch.project,
      status: 'validating',
      endpoint: batch.endpoint,
      model: batch.model ?? null,
      input_file_id: batch.inputFileId,
      completion_window: batch.completionWindow,
      metadata: batch.metadata == null ? null : JSON.stringify(batch.metadata),
      output_expires_after_seconds: batch.outputExpiresAfterSeconds ?? null,
      created_at: now,
      expires_at: eb(now, '+', batch.completionWindowSeconds)
    }))
    .returningAll()
    .executeTakeFirstOrThrow()
  return rowToBatch(row)
}

const LIVE = ['usage_input_tokens', 'usage_cached_tokens', 'usage_output_tokens', 'usage_reasoning_tokens', 'usage_total_tokens', 'upstream_retries'] as const

/**
 * Batch rows with the results recorded by their running chunks beside them: the batch row
 * holds the counts and usage of completed chunks, the subqueries add the rest, in the same
 * statement (one snapshot, so a chunk completing meanwhile is counted once, not twice or never).
 */
function selectLive (db: Kysely<BatchDatabase>) {
  return db.selectFrom('batches as b').selectAll('b')
    .select((eb) => {
      const live = () => eb.selectFrom('batch_results as r').whereRef('r.batch_id', '=', 'b.id')
      return [
        live().select(sql<number | string>`count(*)`.as('n')).where('r.kind', '=', 'output').as('live_completed'),
        live().select(sql<number | string>`count(*)`.as('n')).where('r.kind', '=', 'error').as('live_failed'),
        ...LIVE.map((u) => live().select(sql<number | string | null>`sum(${sql.ref(`r.${u}`)})`.as('n')).as(`live_${u}`))
      ]
    })
}

type LiveRow = Selectable<BatchesTable> & { live_completed: number | string | null, live_failed: number | string | null } &
  { [K in `live_${typeof LIVE[number]}`]: number | string | null }

function liveRowToBatch (row: LiveRow): BatchRecord {
  const batch = rowToBatch(row)
  const n = (v: number | string | null | undefined): number => (v == null ? 0 : toNumber(v))
  batch.requestCounts.completed += n(row.live_completed)
  batch.requestCounts.failed += n(row.live_failed)
  batch.usage.inputTokens += n(row.live_usage_input_tokens)
  batch.usage.cachedTokens += n(row.live_usage_cached_tokens)
  batch.usage.outputTokens += n(row.live_usage_output_tokens)
  batch.usage.reasoningTokens += n(row.live_usage_reasoning_tokens)
  batch.usage.totalTokens += n(row.live_usage_total_tokens)
  batch.upstreamRetries += n(row.live_upstream_retries)
  return batch
}

/**
 * The batch, or null when missing or another project's (when `project` is given), with
 * its counts and usage current (selectLive).
 */
export async function getBatch (db: Kysely<BatchDatabase>, id: string, project?: string): Promise<BatchRecord | null> {
  let select = selectLive(db).where('b.id', '=', id)
  if (project !== undefined) select = select.where('b.project', '=', project)
  const row = await select.executeTakeFirst()
  return row === undefined ? null : liveRowToBatch(row)
}

export interface ListBatchesQuery {
  /** Keyset cursor: batches with a smaller id than this one (the next page, newest first). */
  after?: string
  limit: number
}

export interface BatchPage {
  batches: BatchRecord[]
  hasMore: boolean
}

/**
 * A keyset page of the project's batches, newest first (ids are ULIDs: by id is by
 * creation), as OpenAI lists them; counts and usage current as getBatch's. One row more
 * than the page is read to know whether another page follows.
 */
export async function listBatches (db: Kysely<BatchDatabase>, project: string, query: ListBatchesQuery): Promise<BatchPage> {
  // limit + 1 below would turn a limit of 0 into "no batches, but more to come".
  if (!Number.isSafeInteger(query.limit) || query.limit < 1) throw new RangeError(`limit must be a positive integer, got ${query.limit}`)
  let select = selectLive(db).where('b.project', '=', project)
  if (query.after !== undefined) select = select.where('b.id', '<', query.after)
  const rows = await select.orderBy('b.id', 'desc').limit(query.limit + 1).execute()
  return { batches: rows.slice(0, query.limit).map(liveRowToBatch), hasMore: rows.length > query.limit }
}
