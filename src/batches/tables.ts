import type { ColumnType, Generated } from 'kysely'

/**
 * A `bigint` column: node-pg returns int8 as a string (it may exceed 2^53), SQLite as
 * a number. Writes are numbers; reads go through Number().
 */
export type Int8 = ColumnType<number | string, number, number>
type Int8Default = ColumnType<number | string, number | undefined, number>
export type Int8Null = ColumnType<number | string | null, number | null | undefined, number | null>
export type TextNull = ColumnType<string | null, string | null | undefined, string | null>

/** The `batches` table of migration 0003_batches. */
export interface BatchesTable {
  id: string
  project: string
  status: string
  endpoint: string
  model: TextNull
  input_file_id: string
  completion_window: string
  /** JSON object of up to 16 string pairs, or null. */
  metadata: TextNull
  output_expires_after_seconds: Int8Null
  request_total: Int8Default
  request_completed: Int8Default
  request_failed: Int8Default
  usage_input_tokens: Int8Default
  usage_cached_tokens: Int8Default
  usage_output_tokens: Int8Default
  usage_reasoning_tokens: Int8Default
  usage_total_tokens: Int8Default
  /** Migration 0008: requests re-sent to the upstream for lines of completed chunks. */
  upstream_retries: Int8Default
  /** Unix seconds, database clock. */
  created_at: Int8
  in_progress_at: Int8Null
  finalizing_at: Int8Null
  completed_at: Int8Null
  failed_at: Int8Null
  expired_at: Int8Null
  cancelling_at: Int8Null
  cancelled_at: Int8Null
  expires_at: Int8Null
  output_file_id: TextNull
  error_file_id: TextNull
  /** JSON of OpenAI's `errors` object ({object: 'list', data: [...]}), or null. */
  errors: TextNull
  /** The replica planning or finalizing the batch (migration 0006), and until when (ms, database clock). */
  worker_owner: TextNull
  worker_expires_at_ms: Int8Null
}

/** The `batch_chunks` table: the queue. */
export interface BatchChunksTable {
  batch_id: string
  seq: number
  byte_start: Int8
  byte_end: Int8
  line_start: Int8
  line_end: Int8
  state: ColumnType<string, string | undefined, string>
  lease_owner: TextNull
  lease_epoch: Int8Default
  lease_expires_at_ms: Int8Null
  attempts: Generated<number>
  not_before_ms: Int8Default
  done_at_ms: Int8Null
  output_lines: Int8Null
  error_lines: Int8Null
}

/** The `batch_results` table: results of running chunks, recorded as each request completes. */
export interface BatchResultsTable {
  batch_id: string
  line: Int8
  seq: number
  kind: string
  custom_id: string
  /** The whole result line (OpenAI's batch output shape), without its newline. */
  result: string
  recorded_epoch: Int8
  usage_input_tokens: Int8Default
  usage_cached_tokens: Int8Default
  usage_output_tokens: Int8Default
  usage_reasoning_tokens: Int8Default
  usage_total_tokens: Int8Default
  /** Migration 0008: how many times this line was re-sent before its result. */
  upstream_retries: Int8Default
}

/** The `batch_workers` table of migration 0007: replicas running a worker, with a heartbeat. */
export interface BatchWorkersTable {
  owner: string
  started_at_ms: Int8
  heartbeat_at_ms: Int8
}

export interface BatchDatabase {
  batch_workers: BatchWorkersTable
  batches: BatchesTable
  batch_chunks: BatchChunksTable
  batch_results: BatchResultsTable
}

export type Dialect = 'sqlite' | 'postgres'

export function toNumber (value: number | string): number {
  return typeof value === 'number' ? value : Number(value)
}

export function toNumberOrNull (value: number | string | null): number | null {
  return value === null ? null : toNumber(value)
}
