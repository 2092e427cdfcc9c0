import type { Config } from '../../schemas/config.js'
import { customIdSetMaxBytes } from '../jsonl/custom-id-set.js'
import { scannerMaxBytes } from '../jsonl/line-scanner.js'
import { CHECK_IN_FLIGHT_BYTES, checkPoolSize, KEPT_SLICES_PER_WORKER, SLICE_BYTES, WORKER_YOUNG_GENERATION_MB } from './check-pool.js'

/**
 * The worst-case memory of one replica, as a formula of its settings (issue #9 item 7),
 * derived from the code it bounds; docs/operations.md "Memory" gives it and `npm run bench` checks
 * it against the RSS measured under worst-case uploads. All terms are in bytes.
 */

const MiB = 1024 * 1024
/** Socket, busboy and file-part stream buffers: three 64 KiB highWaterMarks, and a chunk in hand. */
export const TRANSPORT_BYTES = 256 * 1024
/**
 * The fs driver: the pending 1 MiB write batch (and one more 64 KiB chunk), its concat
 * copy, the PassThrough into the store (1 MiB highWaterMark, one batch past it before
 * 'drain' is awaited) and the batch the WriteStream is writing.
 */
export const FS_STORE_BYTES = 5 * MiB + 64 * 1024
/** Parts @aws-sdk/lib-storage uploads at once (s3-blob-store.ts). */
export const S3_QUEUE_SIZE = 4
/**
 * Heap bytes JSON.parse builds per byte of line, at worst: a line of nested arrays
 * (`[[[…]]]`) measured 28 bytes a byte on Node 24, `[{},{},…]` 21, `[[],[],…]` 13,
 * ordinary text 1–2. The line's Buffer (the splitter's pieces, then their concat: 2 L)
 * and its string (up to 2 bytes a byte when one character is past U+00FF: 2 L) come on top.
 */
export const PARSE_BYTES_PER_LINE_BYTE = 28
export const LINE_COPIES = 4
/** The report: 100 errors and 100 warnings of a few hundred bytes, 100 model names of 256 characters. */
export const REPORT_BYTES = 256 * 1024
/**
 * What each line allocates dies with the line, but V8 collects it lazily: its old
 * generation may grow to 4× the live bytes before a full collection (V8's largest heap
 * growing factor). Measured: one validator of 6 MiB nested-array lines held 120 L of heap.
 * The line Buffers die with their JS objects, so they wait for the same collection.
 */
export const GC_GROWTH = 4
/** V8's young generation: three semi-spaces of 16 MiB (Node's default on 64-bit). */
export const YOUNG_GENERATION_BYTES = 48 * MiB
/**
 * An upload checked by a worker (check-pool.ts): its slices (with the worker or being
 * filled) and the worker's copy of a slice's unfinished last line (at most a slice; a
 * longer line's pieces are the `line` term's).
 */
export const CHECK_BYTES = CHECK_IN_FLIGHT_BYTES + SLICE_BYTES
/** The shared slices a pool of two or more keeps for reuse, per worker (check-pool.ts's SharedSlices). */
export const SPARE_SHARED_BYTES_PER_WORKER = KEPT_SLICES_PER_WORKER * SLICE_BYTES
/** Each worker's own young generation (its resourceLimits); the old one holds the `line` terms of its uploads. */
export const WORKER_YOUNG_GENERATION_BYTES = WORKER_YOUNG_GENERATION_MB * MiB

export type MemorySettings = Pick<Config, 'STORAGE_DRIVER' | 'S3_PART_SIZE_BYTES' | 'BATCH_MAX_LINE_BYTES' | 'BATCH_MAX_REQUESTS' | 'MAX_CONCURRENT_UPLOADS' | 'UPLOAD_WORKER_THREADS'>

export interface UploadMemory {
  transport: number
  store: number
  /** The slices of an upload checked by a worker (zero with UPLOAD_WORKER_THREADS=0). */
  check: number
  /** The custom_id set at its bound (zero, like `line`, for a file whose purpose came first and is not batch). */
  ids: number
  /** Allocated per line (its copies, its string, its parse, the report): what the garbage collector multiplies. */
  line: number
}

/** One upload at its worst: a batch file (or one of unknown purpose) of the longest lines and the most ids. */
export function uploadMemoryBound (settings: MemorySettings): UploadMemory {
  const store = settings.STORAGE_DRIVER === 's3'
    // Each part in flight is a view of a concat of the part and the chunk that passed it;
    // the part being gathered and the next concat copy are two more.
    ? (S3_QUEUE_SIZE + 2) * (settings.S3_PART_SIZE_BYTES + MiB) + 2 * MiB
    : FS_STORE_BYTES
  return {
    transport: TRANSPORT_BYTES,
    store,
    check: checkPoolSize(settings.UPLOAD_WORKER_THREADS) === 0 ? 0 : CHECK_BYTES,
    ids: customIdSetMaxBytes(settings.BATCH_MAX_REQUESTS),
    line: (LINE_COPIES + PARSE_BYTES_PER_LINE_BYTE) * settings.BATCH_MAX_LINE_BYTES + REPORT_BYTES
  }
}

/**
 * RSS above the idle process with MAX_CONCURRENT_UPLOADS worst-case uploads:
 * U × (transport + store + check + ids) + GC_GROWTH × U × line + young generations (the
 * main thread's and each check worker's: wherever an upload's line is parsed, its
 * heap grows by the same GC_GROWTH × line) + the shared slices kept for reuse + each
 * thread's line scanner (one per thread, shared by its uploads). Null when
 * uploads are unbounded (MAX_CONCURRENT_UPLOADS=0).
 */
export function replicaMemoryBound (settings: MemorySettings): number | null {
  const uploads = settings.MAX_CONCURRENT_UPLOADS
  if (uploads === 0) return null
  const one = uploadMemoryBound(settings)
  const workers = checkPoolSize(settings.UPLOAD_WORKER_THREADS)
  return uploads * (one.transport + one.store + one.check + one.ids) + GC_GROWTH * uploads * one.line +
    YOUNG_GENERATION_BYTES + workers * WORKER_YOUNG_GENERATION_BYTES + (workers >= 2 ? workers * SPARE_SHARED_BYTES_PER_WORKER : 0) +
    (1 + workers) * scannerMaxBytes(settings.BATCH_MAX_LINE_BYTES)
}
