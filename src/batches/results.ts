import { CompiledQuery, sql, type Kysely } from 'kysely'
import { bindsOnly } from '../metadata/compiled-once.js'
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
  /** Times the line was re-sent before this result (a 429, 5xx or transport failure each); summed like usage. */
  retries?: number
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

/** Rows per grouped INSERT: 13 values each stays far below SQLite's 32766 variables. */
const MAX_GROUP = 500

/** Group sizes compiled once (see compiledFor): the groups that arrive together are smaller than this nearly always. */
const COMPILED_GROUP_SIZES = 64

/** The columns of a group's VALUES rows, in order, and how each is cast. */
const ROW_COLUMNS = ['text', 'int', 'int', 'int', 'text', 'text', 'text', 'int', 'int', 'int', 'int', 'int', 'int'] as const

interface InsertedRow { batch_id: string, line: number | string }

interface Pending {
  lease: Lease
  result: LineResult
  resolve: (outcome: 'recorded' | 'duplicate') => void
  reject: (error: unknown) => void
}

/** A record as its VALUES row: the 13 values of ROW_COLUMNS, in order. */
function rowValues ({ lease, result: r }: Pending): Array<string | number> {
  const u = r.usage
  return [lease.batchId, lease.seq, lease.epoch, r.line, r.kind, r.customId, r.result,
    u?.inputTokens ?? 0, u?.cachedTokens ?? 0, u?.outputTokens ?? 0, u?.reasoningTokens ?? 0, u?.totalTokens ?? 0,
    r.retries ?? 0]
}

/**
 * Results are recorded with group commit: the records that arrive while one INSERT runs
 * go together in the next, one statement (one transaction, one fsync) for up to
 * MAX_GROUP lines, instead of one each. The fence is the same for every row of the group
 * — joined with its chunk at the held epoch, still leased, the line inside it — so a
 * group mixing chunks and leases records each row exactly as a statement of its own
 * would. A caller's record resolves only once its group has committed.
 */
export function createBatchResults (db: Kysely<BatchDatabase>, dialect: Dialect): BatchResults {
  // A share lock on the chunk rows, taken by the INSERT's own SELECT: a concurrent claim
  // (FOR UPDATE SKIP LOCKED) skips them and a concurrent complete waits until this
  // insert has committed, then folds it; an insert queued behind a complete re-reads the
  // chunk, finds it done and inserts nothing. SQLite has one writer.
  const shareLock = dialect === 'postgres' ? sql`for share of c` : sql``
  // SQLite chooses the join's order itself. From a dozen rows a group up, it drove the
  // join from the chunks' state index: every leased chunk in the database, each compared
  // with every row, so a record cost more the more chunks were leased anywhere (138–161
  // µs of CPU a line with 400 leased, 54–61 with 3; `N=40000 LEASED=400 node --import
  // tsx bench/sqlite-results.ts`). Kept off that index alone, from about 250 rows it
  // scanned every chunk ever planned instead. A CROSS JOIN is never reordered by SQLite,
  // so the group's rows lead, and the unary plus keeps `state` off the state index: each
  // row finds its chunk by the primary key (45–52 and 49–55 µs, before the statement was
  // compiled once, below). PostgreSQL has no `+` for text, nor an ON for a CROSS JOIN.
  const joinChunks = dialect === 'sqlite' ? sql`cross join` : sql`join`
  const leased = dialect === 'sqlite' ? sql`+c.state = 'leased'` : sql`c.state = 'leased'`
  // VALUES parameters have no type on PostgreSQL until cast.
  const int = (v: number) => sql`cast(${v} as bigint)`
  const text = (v: string) => sql`cast(${v} as text)`
  let pending: Pending[] = []
  let flushing = false

  /** The group's one statement over `rows`, each row the 13 values of ROW_COLUMNS in order. */
  function groupStatement (rows: ReadonlyArray<ReadonlyArray<string | number>>) {
    const values = rows.map((row) => sql`(${sql.join(row.map((value, i) => ROW_COLUMNS[i] === 'text' ? text(value as string) : int(value as number)))})`)
    // One statement: the fence (each row's chunk at its held epoch, the line inside it)
    // and the insert together; the batch row is not touched (complete folds the counts).
    // `where true`: SQLite needs it to read ON CONFLICT after a join.
    return sql<InsertedRow>`
      with v (batch_id, seq, epoch, line, kind, custom_id, result, u_in, u_cached, u_out, u_reasoning, u_total, retries) as (values ${sql.join(values)})
      insert into batch_results (batch_id, line, seq, kind, custom_id, result, recorded_epoch,
        usage_input_tokens, usage_cached_tokens, usage_output_tokens, usage_reasoning_tokens, usage_total_tokens, upstream_retries)
      select v.batch_id, v.line, v.seq, v.kind, v.custom_id, v.result, c.lease_epoch,
        v.u_in, v.u_cached, v.u_out, v.u_reasoning, v.u_total, v.retries
      from v ${joinChunks} batch_chunks c
        on c.batch_id = v.batch_id and c.seq = v.seq and c.lease_epoch = v.epoch and ${leased}
        and c.line_start <= v.line and c.line_end > v.line
      where true
      ${shareLock}
      on conflict (batch_id, line) do nothing
      returning batch_id, line`
  }

  // Kysely builds and compiles a statement anew on every call: for this one, with 13
  // values a row, that and looking up its long text among the prepared statements were
  // a third of a record's CPU on SQLite (58.7–60.2 against 37.5–46.0 µs a line,
  // `N=40000 LEASED=3 node --import tsx bench/sqlite-results.ts`). Groups of up to
  // COMPILED_GROUP_SIZES rows are compiled once per size with placeholders (bindsOnly),
  // and each group binds its own values. Larger groups are rare and compiled as they come.
  const compiled = new Map<number, CompiledQuery<InsertedRow>>()
  function compiledFor (size: number): CompiledQuery<InsertedRow> | undefined {
    if (size > COMPILED_GROUP_SIZES) return undefined
    let query = compiled.get(size)
    if (query === undefined) {
      const placeholders = Array.from({ length: size }, (_, row) =>
        ROW_COLUMNS.map((type, i) => type === 'text' ? `\u0000${row}.${i}` : -(row * ROW_COLUMNS.length + i + 1)))
      const full = bindsOnly(groupStatement(placeholders).compile(db), placeholders.flat(), `the compiled group of ${size}`)
      // Only its text is kept, which is all that executing needs: with the operation tree
      // Kysely compiled it from (13 nodes and more a row), the 64 sizes held 7.4 MiB of
      // heap, against 1.75 MiB for the texts alone.
      query = CompiledQuery.raw(full.sql, []) as CompiledQuery<InsertedRow>
      compiled.set(size, query)
    }
    return query
  }

  async function insertGroup (group: Pending[]): Promise<Set<string>> {
    const rows = group.map(rowValues)
    const query = compiledFor(rows.length)
    const { rows: inserted } = query === undefined
      ? await groupStatement(rows).execute(db)
      : await db.executeQuery<InsertedRow>({ ...query, parameters: rows.flat() })
    return new Set(inserted.map((row) => `${row.batch_id}/${toNumber(row.line)}`))
  }

  /** Why a row was not inserted: its line had a result already, or the fence refused. Nothing was written either way. */
  async function settleMissing (missing: Pending[]): Promise<void> {
    for (const p of missing) {
      const held = await db.selectFrom('batch_chunks').select('seq')
        .where(heldBy(p.lease)).where('line_start', '<=', p.result.line).where('line_end', '>', p.result.line)
        .executeTakeFirst()
      if (held === undefined) p.reject(new LeaseLostError(p.lease, `record of line ${p.result.line}`))
      else p.resolve('duplicate')
    }
  }

  async function flush (): Promise<void> {
    if (flushing) return
    flushing = true
    try {
      while (pending.length > 0) {
        const group = pending.slice(0, MAX_GROUP)
        pending = pending.slice(group.length)
        try {
          // Two records of one line in one statement would be one conflict: the later ones
          // go back to the front of the queue, for the next statement, as they would alone.
          // Not settled as duplicates of the first: the first may be refused (its lease is
          // stale, its line outside its chunk) and a later one, under the lease now held,
          // is then the line's only result.
          const seen = new Set<string>()
          const first: Pending[] = []
          const again: Pending[] = []
          for (const p of group) {
            const key = `${p.lease.batchId}/${p.result.line}`
            if (seen.has(key)) again.push(p)
            else {
              seen.add(key)
              first.push(p)
            }
          }
          const inserted = await insertGroup(first)
          const missing: Pending[] = []
          for (const p of first) {
            if (inserted.has(`${p.lease.batchId}/${p.result.line}`)) p.resolve('recorded')
            else missing.push(p)
          }
          await settleMissing(missing)
          pending = [...again, ...pending]
        } catch (error) {
          for (const p of group) p.reject(error)
        }
      }
    } finally {
      flushing = false
    }
  }

  return {
    async record (lease, r) {
      return await new Promise<'recorded' | 'duplicate'>((resolve, reject) => {
        pending.push({ lease, result: r, resolve, reject })
        // On the next turn: the answers that arrive together go together.
        if (!flushing) setImmediate(() => { flush().catch(() => {}) })
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
