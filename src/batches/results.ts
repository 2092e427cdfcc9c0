import { sql, type Kysely } from 'kysely'
import { heldBy, LeaseLostError, type Lease } from './lease.js'
import { toNumber, type BatchDatabase, type Dialect } from './tables.js'

/** `output` goes to the output file (a 2xx), `error` to the error file. */
export type ResultKind = 'output' | 'error'

export interface LineUsage {
  inputTokens: number
  cachedTokens: number
  outputTokens: number
  reasoningTokens: number
  totalTokens: number
}

export interface LineResult {
  /** 1-based physical line number in the input file; within the chunk's line range. */
  line: number
  customId: string
  kind: ResultKind
  /** The whole result line as it will appear in the output or error file, without its newline. */
  result: string
  /** Summed into the batch's usage when the line is first recorded. */
  usage?: LineUsage
}

export interface StoredResult {
  line: number
  customId: string
  result: string
}

export interface BatchResults {
  /**
   * Records one line's final result under the held lease, with its usage. `recorded`
   * the first time, `duplicate` when the line already has a result (the first one
   * stays). Throws LeaseLostError when the lease is not held at `lease.epoch`, or when
   * the line lies outside the chunk. Counts and usage reach the batch row when the chunk
   * completes; until then getBatch adds them from these rows.
   */
  record (lease: Lease, result: LineResult): Promise<'recorded' | 'duplicate'>
  /** The lines of a chunk that already have a result: a new holder skips them. */
  recordedLines (batchId: string, seq: number): Promise<number[]>
  /** A page of a chunk's results of one kind, in line order after `afterLine`, for writing its part objects. */
  page (batchId: string, seq: number, kind: ResultKind, afterLine: number, limit: number): Promise<StoredResult[]>
}

export function createBatchResults (db: Kysely<BatchDatabase>, dialect: Dialect): BatchResults {
  // A share lock on the chunk row, taken by the INSERT's own SELECT: a concurrent claim
  // (FOR UPDATE SKIP LOCKED) skips the row and a concurrent complete waits until this
  // insert has committed, then folds it; an insert queued behind a complete re-reads the
  // chunk, finds it done and inserts nothing. SQLite has one writer.
  const shareLock = dialect === 'postgres' ? sql`for share` : sql``

  return {
    async record (lease, r) {
      const u = r.usage
      // One statement: the fence (the chunk at the held epoch, the line inside it) and the
      // insert together; the batch row is not touched (complete folds the counts).
      const { rows } = await sql<{ line: number | string }>`
        insert into batch_results (batch_id, line, seq, kind, custom_id, result, recorded_epoch,
          usage_input_tokens, usage_cached_tokens, usage_output_tokens, usage_reasoning_tokens, usage_total_tokens)
        select batch_id, ${r.line}, seq, ${r.kind}, ${r.customId}, ${r.result}, lease_epoch,
          ${u?.inputTokens ?? 0}, ${u?.cachedTokens ?? 0}, ${u?.outputTokens ?? 0}, ${u?.reasoningTokens ?? 0}, ${u?.totalTokens ?? 0}
        from batch_chunks
        where batch_id = ${lease.batchId} and seq = ${lease.seq} and lease_epoch = ${lease.epoch} and state = 'leased'
          and line_start <= ${r.line} and line_end > ${r.line}
        ${shareLock}
        on conflict (batch_id, line) do nothing
        returning line`.execute(db)
      if (rows.length > 0) return 'recorded'
      // Nothing inserted: the line had a result already, or the fence refused. Which one
      // only decides what the holder is told; nothing was written either way.
      const held = await db.selectFrom('batch_chunks').select('seq')
        .where(heldBy(lease)).where('line_start', '<=', r.line).where('line_end', '>', r.line)
        .executeTakeFirst()
      if (held === undefined) throw new LeaseLostError(lease, `record of line ${r.line}`)
      return 'duplicate'
    },

    async recordedLines (batchId, seq) {
      const rows = await db.selectFrom('batch_results').select('line')
        .where('batch_id', '=', batchId).where('seq', '=', seq).orderBy('line').execute()
      return rows.map((row) => toNumber(row.line))
    },

    async page (batchId, seq, kind, afterLine, limit) {
      const rows = await db.selectFrom('batch_results').select(['line', 'custom_id', 'result'])
        .where('batch_id', '=', batchId).where('seq', '=', seq).where('kind', '=', kind).where('line', '>', afterLine)
        .orderBy('line').limit(limit).execute()
      return rows.map((row) => ({ line: toNumber(row.line), customId: row.custom_id, result: row.result }))
    }
  }
}
