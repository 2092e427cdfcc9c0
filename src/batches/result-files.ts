import { Buffer } from 'node:buffer'
import { Readable } from 'node:stream'
import type { FileService } from '../files/file-service.js'
import { batchPartsPrefix, newUploadId, objectKeyFor } from '../ids.js'
import type { FileRecord } from '../metadata/file-store.js'
import type { BlobStore } from '../storage/blob-store.js'
import type { Kysely } from 'kysely'
import type { Lease } from './lease.js'
import type { BatchResults, ResultKind } from './results.js'
import { toNumber, toNumberOrNull, type BatchDatabase } from './tables.js'

/**
 * A batch's results as files (issue 10 item 5).
 *
 * Lines: OpenAI's BatchRequestOutput (../shared/openai-spec/batch-lines.json), `id`,
 * `custom_id`, `response` and `error` always present; an HTTP answer has `response`
 * {status_code, request_id, body} and `error: null`, a failure without an HTTP answer
 * `response: null` and `error: {code, message}`. A 2xx goes to the output file, every
 * other final status and every non-HTTP failure to the error file (resultKind).
 *
 * Parts: when a chunk's lines all have results, writeChunkParts streams its recorded
 * results (results.ts, a page at a time) into two objects, output and error, whose key
 * carries the batch, the chunk's seq and the lease epoch that wrote them (queue.ts: parts
 * are not fenced by the database, so a zombie's late upload lands beside the part that
 * counts, never over it). Both parts are written even when empty, so finalize can tell a
 * missing part (an error) from a chunk without lines of that kind.
 *
 * Finalize: each kind's parts are concatenated in seq order, streamed part by part into
 * one object (never all in memory) and committed as a File with purpose `batch_output`
 * through the file service (object complete before its row). A kind without any line
 * gets no file and a null id, as OpenAI leaves error_file_id null when nothing failed
 * (and output_file_id null when nothing succeeded). If either file cannot be made, the
 * other is deleted again and the parts stay, so finalize can simply run again. Parts are
 * removed only after `onCommitted` (the caller records the ids on the batch row) returns:
 * a crash before that leaves the parts for a retry; a crash after it leaves only parts,
 * which removeParts (or the reconciler) takes away.
 */

export interface AnswerLine {
  /** Our per-line id, `batch_req_…`. */
  id: string
  customId: string
  statusCode: number
  requestId: string
  /** The upstream's JSON body (an object; anything else is wrapped, see answerLine). */
  body: unknown
}

export interface FailureLine {
  id: string
  customId: string
  code: string
  message: string
}

/** Where a final HTTP status goes: only a 2xx is an output line. */
export function resultKind (statusCode: number): ResultKind {
  return statusCode >= 200 && statusCode < 300 ? 'output' : 'error'
}

/**
 * The result line for an HTTP answer, without its newline. The spec's `body` is an
 * object; an upstream that answered JSON of another kind (or none) is kept, not dropped,
 * under `{"value": …}` so the line still validates.
 */
export function answerLine (a: AnswerLine): string {
  const body = typeof a.body === 'object' && a.body !== null && !Array.isArray(a.body) ? a.body : { value: a.body ?? null }
  return JSON.stringify({ id: a.id, custom_id: a.customId, response: { status_code: a.statusCode, request_id: a.requestId, body }, error: null })
}

/** The result line for a request that got no HTTP answer (e.g. `batch_expired`), without its newline. */
export function failureLine (f: FailureLine): string {
  return JSON.stringify({ id: f.id, custom_id: f.customId, response: null, error: { code: f.code, message: f.message } })
}

export const RESULT_KINDS: readonly ResultKind[] = ['output', 'error']

/** Part objects live beside the files, not under them: no file row will ever name them. */
export function partKey (prefix: string, batchId: string, seq: number, epoch: number, kind: ResultKind): string {
  // seq padded so a listing is in seq order; the epoch after it tells a zombie's part apart.
  return `${batchPartsPrefix(prefix)}${batchId}/${String(seq).padStart(10, '0')}-${epoch}.${kind}.jsonl`
}

/** The prefix of every part of one batch (listing, removal, the reconciler). */
export function partsPrefix (prefix: string, batchId: string): string {
  return `${batchPartsPrefix(prefix)}${batchId}/`
}

export interface ResultFilesDeps {
  blobStore: BlobStore
  results: BatchResults
  fileService: FileService
  /** STORAGE_PREFIX. */
  storagePrefix: string
  /** Milliseconds since the epoch (createdAt, expiresAt of the files). */
  now: () => number
}

/** Results read per page while writing a part: bounds the memory a chunk's part takes. */
const PAGE = 500

export interface PartCounts { output: number, error: number }

/** Writes the chunk's two part objects under its lease's epoch; returns the lines in each. Call queue.complete after. */
export async function writeChunkParts (deps: ResultFilesDeps, lease: Lease, signal?: AbortSignal): Promise<PartCounts> {
  const counts: PartCounts = { output: 0, error: 0 }
  for (const kind of RESULT_KINDS) {
    const counted = async function * (): AsyncGenerator<Buffer> {
      for await (const page of resultPages(deps.results, lease.batchId, lease.seq, kind)) {
        counts[kind] += page.lines
        yield page
      }
    }
    const key = partKey(deps.storagePrefix, lease.batchId, lease.seq, lease.epoch, kind)
    await deps.blobStore.put(key, Readable.from(counted()), { contentType: 'application/jsonl', ...(signal === undefined ? {} : { signal }) })
  }
  return counts
}

/** A chunk's recorded results of one kind as JSONL, a page at a time, in line order. */
async function * resultPages (results: BatchResults, batchId: string, seq: number, kind: ResultKind): AsyncGenerator<Buffer & { lines: number }> {
  let after = 0
  for (;;) {
    const page = await results.page(batchId, seq, kind, after, PAGE)
    if (page.length === 0) return
    after = page[page.length - 1]!.line
    yield Object.assign(Buffer.from(page.map((r) => r.result + '\n').join('')), { lines: page.length })
    if (page.length < PAGE) return
  }
}

/** A done chunk as finalize needs it: where its parts are and how many lines each holds. */
export interface DoneChunk {
  seq: number
  /** The epoch the chunk was completed at (it keeps it when done). */
  epoch: number
  outputLines: number
  errorLines: number
  /**
   * A chunk of a cancelled batch that was never completed (batch-tasks.ts seals it): it
   * has no parts; its results are the rows recorded before the cancel, read from the
   * database in line order.
   */
  sealed?: boolean
}

export interface FinalizeInput {
  batchId: string
  project: string
  /** Seconds after creation the files expire (`output_expires_after`), or null for never. */
  expiresAfterSeconds: number | null
  /** Every chunk of the batch, done. */
  chunks: readonly DoneChunk[]
  /** Called with the committed files before the parts are removed: record the ids on the batch here. */
  onCommitted?: (files: ResultFileIds) => Promise<void>
  signal?: AbortSignal
}

export interface ResultFileIds {
  outputFileId: string | null
  errorFileId: string | null
}

export interface FinalizeResult extends ResultFileIds {
  /** False when removing a part failed after the files were committed: the files stand, the parts are orphans. */
  partsRemoved: boolean
}

export async function finalizeResultFiles (deps: ResultFilesDeps, input: FinalizeInput): Promise<FinalizeResult> {
  const chunks = [...input.chunks].sort((a, b) => a.seq - b.seq)
  const committed: FileRecord[] = []
  try {
    const ids: ResultFileIds = { outputFileId: null, errorFileId: null }
    for (const kind of RESULT_KINDS) {
      const lines = chunks.reduce((n, c) => n + (kind === 'output' ? c.outputLines : c.errorLines), 0)
      if (lines === 0) continue
      const record = await commitKind(deps, input, chunks, kind)
      committed.push(record)
      if (kind === 'output') ids.outputFileId = record.id
      else ids.errorFileId = record.id
    }
    await input.onCommitted?.(ids)
    committed.length = 0
    // The files are recorded now: a failing removal must not make the caller finalize again.
    const partsRemoved = await removeParts(deps.blobStore, chunks, deps.storagePrefix, input.batchId).then(() => true, () => false)
    return { ...ids, partsRemoved }
  } catch (error) {
    // Nothing half-done: a file made before the failure goes again; the parts stay for a retry.
    for (const record of committed) await deps.fileService.delete(record.project, record.id).catch(() => {})
    throw error
  }
}

async function commitKind (deps: ResultFilesDeps, input: FinalizeInput, chunks: readonly DoneChunk[], kind: ResultKind): Promise<FileRecord> {
  const { blobStore } = deps
  const signal = input.signal
  const concatenated = async function * (): AsyncGenerator<Buffer> {
    for (const c of chunks) {
      if (c.sealed === true) {
        yield * resultPages(deps.results, input.batchId, c.seq, kind)
        continue
      }
      const { body } = await blobStore.get(partKey(deps.storagePrefix, input.batchId, c.seq, c.epoch, kind), signal === undefined ? undefined : { signal })
      // One part open at a time, read as it is written out.
      for await (const piece of body as AsyncIterable<Buffer>) yield piece
    }
  }
  const createdAt = Math.floor(deps.now() / 1000)
  return await deps.fileService.commitStream({
    project: input.project,
    filename: `${input.batchId}_${kind}.jsonl`,
    purpose: 'batch_output',
    createdAt,
    expiresAt: input.expiresAfterSeconds === null ? null : createdAt + input.expiresAfterSeconds,
    requestCount: null,
    storageKey: objectKeyFor(input.project, newUploadId(), deps.storagePrefix),
    warnings: []
  }, Readable.from(concatenated()), signal)
}

/**
 * The batch's chunks with their final epochs and line counts; throws unless every chunk
 * is done or sealed (a sealed chunk's counts are those of its recorded rows).
 */
export async function doneChunks (db: Kysely<BatchDatabase>, batchId: string): Promise<DoneChunk[]> {
  const rows = await db.selectFrom('batch_chunks').select(['seq', 'state', 'lease_epoch', 'output_lines', 'error_lines'])
    .where('batch_id', '=', batchId).orderBy('seq').execute()
  const sealedCounts = new Map<string, number>()
  if (rows.some((row) => row.state === 'sealed')) {
    const counted = await db.selectFrom('batch_results').select((eb) => ['seq', 'kind', eb.fn.countAll<number | string>().as('n')])
      .where('batch_id', '=', batchId).groupBy(['seq', 'kind']).execute()
    for (const c of counted) sealedCounts.set(`${c.seq}.${c.kind}`, toNumber(c.n))
  }
  return rows.map((row) => {
    if (row.state === 'sealed') {
      return { seq: row.seq, epoch: toNumber(row.lease_epoch), outputLines: sealedCounts.get(`${row.seq}.output`) ?? 0, errorLines: sealedCounts.get(`${row.seq}.error`) ?? 0, sealed: true }
    }
    if (row.state !== 'done') throw new Error(`chunk ${row.seq} of ${batchId} is ${row.state}, not done`)
    return { seq: row.seq, epoch: toNumber(row.lease_epoch), outputLines: toNumberOrNull(row.output_lines) ?? 0, errorLines: toNumberOrNull(row.error_lines) ?? 0 }
  })
}

/**
 * Removes the parts of the given chunks (both kinds), then every other object left under
 * the batch's parts prefix. Removing a missing part is not an error.
 *
 * Why the sweep: a holder killed between writeChunkParts and queue.complete leaves its
 * parts under its epoch, and the next holder writes the chunk's parts again under a
 * higher one, so the chunk's final epoch no longer names them (found by
 * test/batches/engine/kill-one-node.test.ts: `…/0000000012-1.output.jsonl` left behind).
 * The reconciler would take them (stale-parts.ts), but only past RECONCILE_GRACE_MS
 * (2 h by default); once the result files are committed no part of this batch is needed,
 * so they go here at once. A zombie still writing after this is the reconciler's.
 */
export async function removeParts (store: BlobStore, chunks: ReadonlyArray<{ seq: number, epoch: number, sealed?: boolean }>, prefix: string, batchId: string): Promise<void> {
  for (const c of chunks) {
    if (c.sealed === true) continue
    for (const kind of RESULT_KINDS) await store.delete(partKey(prefix, batchId, c.seq, c.epoch, kind))
  }
  const stale: string[] = []
  for await (const object of store.list(partsPrefix(prefix, batchId))) stale.push(object.key)
  for (const key of stale) await store.delete(key)
}
