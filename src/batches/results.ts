import { sql, type Kysely } from 'kysely'
import { LeaseLostError, type Lease } from './lease.js'
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
   * Records one line's final result under the held lease. `recorded` the first time,
   * `duplicate` when the line already has a result (then counts and usage are left
   * alone). Throws LeaseLostError when the lease is not held at `lease.epoch`, or when
   * the line lies outside the chunk.
   */
  record (lease: Lease, result: LineResult): Promise<'recorded' | 'duplicate'>
  /** The lines of a chunk that already have a result: a new holder skips them. */
  recordedLines (batchId: string, seq: number): Promise<number[]>
  /** A page of a chunk's results of one kind, in line order after `afterLine`, for writing its part objects. */
  page (batchId: string, seq: number, kind: ResultKind, afterLine: number, limit: number): Promise<StoredResult[]>
}

// Increments in SQL: replicas record lines of one batch at once.
function add (column: 'request_completed' | 'request_failed' | `usage_${string}`, by: number) {
  return sql<number>`${sql.ref(column)} + ${by}`
}

export function createBatchResults (db: Kysely<BatchDatabase>, dialect: Dialect): BatchResults {
  // A share lock on the chunk row: a concurrent claim (FOR UPDATE SKIP LOCKED) skips the
  // row and a concurrent complete waits until this record has committed or rolled back,
  // so no takeover slips between the fence check and the insert. SQLite has one writer.
  const shareLock = dialect === 'postgres' ? sql`for share` : sql``

  return {
    async record (lease, r) {
      return await db.transaction().execute(async (trx) => {
        const { rows } = await sql<{ seq: number }>`
          select seq from batch_chunks
          where batch_id = ${lease.batchId} and seq = ${lease.seq} and lease_epoch = ${lease.epoch} and state = 'leased'
            and line_start <= ${r.line} and line_end > ${r.line}
          ${shareLock}`.execute(trx)
        if (rows.length === 0) throw new LeaseLostError(lease, `record of line ${r.line}`)
        const inserted = await trx.insertInto('batch_results')
          .values({
            batch_id: lease.batchId,
            line: r.line,
            seq: lease.seq,
            kind: r.kind,
            custom_id: r.customId,
            result: r.result,
            recorded_epoch: lease.epoch
          })
          .onConflict((oc) => oc.columns(['batch_id', 'line']).doNothing())
          .executeTakeFirst()
        if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) return 'duplicate'
        const u = r.usage
        await trx.updateTable('batches')
          .set({
            request_completed: add('request_completed', r.kind === 'output' ? 1 : 0),
            request_failed: add('request_failed', r.kind === 'error' ? 1 : 0),
            usage_input_tokens: add('usage_input_tokens', u?.inputTokens ?? 0),
            usage_cached_tokens: add('usage_cached_tokens', u?.cachedTokens ?? 0),
            usage_output_tokens: add('usage_output_tokens', u?.outputTokens ?? 0),
            usage_reasoning_tokens: add('usage_reasoning_tokens', u?.reasoningTokens ?? 0),
            usage_total_tokens: add('usage_total_tokens', u?.totalTokens ?? 0)
          })
          .where('id', '=', lease.batchId)
          .execute()
        return 'recorded'
      })
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
