import { Buffer } from 'node:buffer'
import { LineSplitter } from '../jsonl/line-splitter.js'
import type { BlobStore } from '../storage/blob-store.js'
import type { PlannedChunk } from './lease.js'

/**
 * Planning a stored, validated batch input into chunks (issue 10 item 3), and reading a
 * chunk back with one ranged read. Neither ever holds the file: the plan is one streaming
 * pass that keeps a few counters, the reader holds at most one line.
 *
 * Line numbers are the validator's (batch-validator.ts, through the same LineSplitter
 * rules): 1-based physical lines, LF ends a line, a trailing CR is not part of it, a BOM
 * starts line 1 only, a final line without LF counts when it has bytes. A line of spaces
 * and tabs only is blank: the validator refuses blank lines BETWEEN requests but accepts
 * them after the last one, so a validated file's blank lines trail it. The plan counts only
 * request lines towards a chunk's limits and folds blank lines into the chunk that holds
 * the request before them, so the ranges still cover the file exactly; the reader skips
 * blank lines, as the validator does. Blank lines before the first request (refused by the
 * validator) are folded into the first chunk, so a hand-built plan still covers the file.
 */

export interface PlanLimits {
  /** Most request lines in one chunk. */
  maxLines: number
  /** Most bytes in one chunk; a single longer line still gets a chunk of its own. */
  maxBytes: number
}

/** A chunk as queue.plan takes it, numbered 0… in file order. */
export interface PlanChunk extends PlannedChunk {
  seq: number
  /** Request lines in the chunk (blank lines are not counted). */
  requests: number
}

export interface BatchPlan {
  chunks: PlanChunk[]
  requests: number
  bytes: number
}

const LF = 10
const CR = 13
const SP = 0x20
const TAB = 0x09
const BOM = [0xef, 0xbb, 0xbf] as const

/** Plans the object at `key` into chunks in one streaming pass. Throws when it has no request line. */
export async function planBatchInput (store: BlobStore, key: string, limits: PlanLimits, signal?: AbortSignal): Promise<BatchPlan> {
  positive('maxLines', limits.maxLines)
  positive('maxBytes', limits.maxBytes)
  const { body } = await store.get(key, signal === undefined ? undefined : { signal })
  const chunks: PlanChunk[] = []
  let offset = 0 // absolute offset of the next byte
  let lineNo = 1
  let lineStartByte = 0
  // The state of the current line: no data byte seen yet; a CR seen that may be its end.
  let blank = true
  let pendingCr = false
  let bomMatched = 0 // leading bytes of line 1 that match the BOM so far
  let open: PlanChunk | null = null
  let requests = 0

  const endLine = (endByte: number): void => {
    // A BOM prefix cut short is data (LineSplitter hands such bytes on as the line).
    if (bomMatched > 0 && bomMatched < BOM.length) blank = false
    bomMatched = BOM.length
    if (blank) {
      if (open !== null) {
        open.byteEnd = endByte
        open.lineEnd = lineNo + 1
      }
    } else {
      requests++
      const fits = open !== null && open.requests < limits.maxLines && endByte - open.byteStart <= limits.maxBytes
      if (open !== null && fits) {
        open.byteEnd = endByte
        open.lineEnd = lineNo + 1
        open.requests++
      } else {
        const start = open === null ? 0 : lineStartByte
        open = { seq: chunks.length, byteStart: start, byteEnd: endByte, lineStart: open === null ? 1 : lineNo, lineEnd: lineNo + 1, requests: 1 }
        chunks.push(open)
      }
    }
    lineNo++
    lineStartByte = endByte
    blank = true
    pendingCr = false
  }

  for await (const piece of body as AsyncIterable<Buffer>) {
    const buf = Buffer.isBuffer(piece) ? piece : Buffer.from(piece)
    let pos = 0
    while (pos < buf.length) {
      const nl = buf.indexOf(LF, pos)
      const stop = nl === -1 ? buf.length : nl
      // Only a line still blank needs its bytes looked at, and only until its first data byte.
      for (let i = pos; blank && i < stop; i++) {
        const b = buf[i]!
        const at = offset + i
        if (bomMatched < BOM.length && at === bomMatched && b === BOM[bomMatched]) {
          bomMatched++
          continue
        }
        if (bomMatched > 0 && bomMatched < BOM.length) blank = false
        bomMatched = BOM.length
        if (pendingCr || (b !== SP && b !== TAB && b !== CR)) blank = false
        else if (b === CR) pendingCr = true
      }
      if (nl === -1) break
      endLine(offset + nl + 1)
      pos = nl + 1
    }
    offset += buf.length
  }
  if (offset > lineStartByte) endLine(offset)
  if (requests === 0) throw new RangeError(`batch input ${key} has no request line`)
  // Blank lines before the first request: the first chunk starts at byte 0, line 1.
  return { chunks, requests, bytes: offset }
}

export interface ChunkLine {
  /** 1-based physical line number, as the validator numbers it. */
  lineNo: number
  /** The line without its LF or trailing CR (and without the BOM on line 1). */
  line: Buffer
}

/**
 * Yields the request lines of one chunk from a ranged read of exactly its bytes. The
 * chunk must start at a line boundary (every planned chunk does). A line longer than
 * `maxLineBytes` cannot be in a validated file, so it throws rather than being skipped.
 */
export async function * readChunkLines (store: BlobStore, key: string, chunk: PlannedChunk, maxLineBytes: number, signal?: AbortSignal): AsyncGenerator<ChunkLine> {
  const range = { start: chunk.byteStart, end: chunk.byteEnd - 1 }
  const { body, contentLength } = await store.get(key, signal === undefined ? { range } : { range, signal })
  if (contentLength !== chunk.byteEnd - chunk.byteStart) {
    body.destroy()
    throw new RangeError(`chunk ${chunk.byteStart}-${chunk.byteEnd} of ${key} read ${contentLength} bytes`)
  }
  let ready: ChunkLine[] = []
  let oversized: number | null = null
  // The splitter numbers from 1 and strips a BOM at its first bytes: right for a chunk at
  // byte 0; a later chunk cannot start with a BOM (JSON.parse refuses one, so the validator did).
  const splitter = new LineSplitter({
    maxLineBytes,
    onLine: (line, n) => {
      if (!isBlank(line)) ready.push({ lineNo: chunk.lineStart + n - 1, line: Buffer.from(line) })
    },
    onOversizedLine: (n) => { oversized ??= chunk.lineStart + n - 1 }
  })
  try {
    for await (const piece of body as AsyncIterable<Buffer>) {
      splitter.push(piece)
      if (oversized !== null) throw new RangeError(`line ${oversized} of ${key} is longer than ${maxLineBytes} bytes`)
      const out = ready
      ready = []
      yield * out
    }
    splitter.end()
    if (oversized !== null) throw new RangeError(`line ${oversized} of ${key} is longer than ${maxLineBytes} bytes`)
    yield * ready
  } finally {
    body.destroy()
  }
}

function isBlank (line: Buffer): boolean {
  for (const b of line) {
    if (b !== SP && b !== TAB) return false
  }
  return true
}

function positive (name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`)
}
