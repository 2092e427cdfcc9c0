import { Buffer } from 'node:buffer'

interface LineSplitterLimits {
  /**
   * Largest accepted line, in bytes, not counting its '\n', a '\r' right before it, or
   * the BOM of line 1: a file does not change verdict between LF and CRLF line ends.
   */
  maxLineBytes: number
  /** Called once per line longer than `maxLineBytes`; that line is never buffered or emitted. */
  onOversizedLine: (lineNo: number) => void
}

/**
 * Lines go to exactly one of two callbacks. `onLine` gets each line as a Buffer.
 * `onLineRange` gets the line as bytes `start` to `end` (exclusive) of `buf`, which saves
 * creating a Buffer view per line (a measurable cost at millions of short lines) for a
 * caller that only decodes or scans the bytes; `buf` may hold other lines around it.
 */
export type LineSplitterOptions = LineSplitterLimits & (
  | {
    /** A line without its '\n' and trailing '\r'; the BOM (EF BB BF) is stripped from line 1. */
    onLine: (line: Buffer, lineNo: number) => void
    onLineRange?: never
  }
  | {
    /** The same lines as `onLine`, as a range of `buf`. */
    onLineRange: (buf: Buffer, start: number, end: number, lineNo: number) => void
    onLine?: never
  })

/**
 * Bytes held for the unfinished line. Exported as a symbol so tests can check that an
 * oversized line is never buffered, without making it part of the splitter's API.
 */
export const kPendingBytes: unique symbol = Symbol('LineSplitter.pendingBytes')

const LF = 10
const CR = 13
const BOM = Buffer.from([0xef, 0xbb, 0xbf])
const EMPTY = Buffer.alloc(0)

/**
 * Splits a byte stream into physical lines (1-based, empty lines counted, as the Batch
 * API numbers them). A line inside one chunk is handed on as a `subarray` (or a range)
 * of that chunk, so chunks must not be reused by the producer after `push` (Node streams
 * never do); only a line spanning chunks is copied, once, when its end is seen.
 */
export class LineSplitter {
  readonly #maxLineBytes: number
  readonly #onLine: (buf: Buffer, start: number, end: number, lineNo: number) => void
  readonly #onOversizedLine: (lineNo: number) => void
  #pieces: Buffer[] = []
  #pendingBytes = 0
  #lineNo = 1
  #skipping = false
  #bytes = 0
  #ended = false
  // The first bytes are held until 3 are known, so a BOM split across chunks is still found.
  #head: Buffer | null = EMPTY

  constructor (opts: LineSplitterOptions) {
    this.#maxLineBytes = opts.maxLineBytes
    const onLine = opts.onLine
    this.#onLine = onLine === undefined
      ? opts.onLineRange
      : (buf, start, end, lineNo) => onLine(start === 0 && end === buf.length ? buf : buf.subarray(start, end), lineNo)
    this.#onOversizedLine = opts.onOversizedLine
  }

  /** Bytes pushed so far, BOM and line ends included. */
  get bytes (): number {
    return this.#bytes
  }

  get [kPendingBytes] (): number {
    return this.#pendingBytes + (this.#head === null ? 0 : this.#head.length)
  }

  push (chunk: Buffer): void {
    if (this.#ended) throw new Error('LineSplitter: push() after end()')
    this.#bytes += chunk.length
    if (this.#head !== null) {
      const start = this.#head.length === 0 ? chunk : Buffer.concat([this.#head, chunk])
      if (start.length < BOM.length && isBomPrefix(start)) {
        this.#head = start
        return
      }
      this.#head = null
      this.#scan(isBomPrefix(start) ? start.subarray(BOM.length) : start)
      return
    }
    this.#scan(chunk)
  }

  /** Emits the final line when the input does not end in '\n'. */
  end (): void {
    if (this.#ended) throw new Error('LineSplitter: end() called twice')
    if (this.#head !== null) {
      // Fewer than 3 bytes in all, so never a whole BOM: they are data.
      const head = this.#head
      this.#head = null
      this.#scan(head)
    }
    this.#ended = true
    if (this.#skipping || this.#pendingBytes === 0) return
    const pieces = this.#pieces
    const line = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, this.#pendingBytes)
    this.#pieces = []
    this.#pendingBytes = 0
    this.#emit(line, 0, line.length)
  }

  #scan (chunk: Buffer): void {
    const len = chunk.length
    let pos = 0
    while (pos < len) {
      const nl = chunk.indexOf(LF, pos)
      if (nl === -1) {
        if (!this.#skipping) this.#hold(chunk, pos)
        return
      }
      if (!this.#skipping) this.#finish(chunk, pos, nl)
      this.#skipping = false
      this.#lineNo++
      pos = nl + 1
    }
  }

  /** Keeps the unfinished tail of a chunk, unless the line is already known to be too long. */
  #hold (chunk: Buffer, pos: number): void {
    const total = this.#pendingBytes + chunk.length - pos
    // One byte of slack: the last byte held may be the '\r' of a CRLF, which does not count.
    if (total > this.#maxLineBytes + 1) {
      this.#pieces = []
      this.#pendingBytes = 0
      this.#skipping = true
      this.#onOversizedLine(this.#lineNo)
      return
    }
    this.#pieces.push(chunk.subarray(pos))
    this.#pendingBytes = total
  }

  #finish (chunk: Buffer, pos: number, nl: number): void {
    const pieces = this.#pieces
    if (pieces.length === 0) {
      this.#emit(chunk, pos, nl)
      return
    }
    const total = this.#pendingBytes + nl - pos
    this.#pieces = []
    this.#pendingBytes = 0
    if (total > this.#maxLineBytes + 1) {
      this.#onOversizedLine(this.#lineNo)
      return
    }
    if (nl > pos) pieces.push(chunk.subarray(pos, nl))
    const line = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, total)
    this.#emit(line, 0, line.length)
  }

  #emit (buf: Buffer, start: number, end: number): void {
    const stop = end > start && buf[end - 1] === CR ? end - 1 : end
    if (stop - start > this.#maxLineBytes) {
      this.#onOversizedLine(this.#lineNo)
      return
    }
    this.#onLine(buf, start, stop, this.#lineNo)
  }
}

/** True when `buf` starts with the BOM, or is too short to tell yet (empty included). */
function isBomPrefix (buf: Buffer): boolean {
  const n = Math.min(buf.length, BOM.length)
  for (let i = 0; i < n; i++) {
    if (buf[i] !== BOM[i]) return false
  }
  return true
}
