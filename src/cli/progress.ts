import type { Buffer } from 'node:buffer'

export interface ProgressOutput {
  write: (text: string) => unknown
}

const MiB = 1024 * 1024
const NEWLINE = 0x0a

/**
 * One stderr line, rewritten in place with `\r`, for reading a large file on a
 * terminal. Updates are throttled (a terminal redrawn per chunk slows the read) and
 * padded with spaces instead of ANSI erase codes, so any terminal clears them.
 *
 * It counts lines, not requests: the validator exposes no live request count, and a
 * newline count is the same number for a file without blank lines.
 */
export class ProgressLine {
  readonly #out: ProgressOutput
  readonly #totalBytes: number
  readonly #intervalMs: number
  readonly #now: () => number
  #lines = 0
  #lastAt = Number.NEGATIVE_INFINITY
  #width = 0

  constructor (out: ProgressOutput, totalBytes: number, options: { intervalMs: number, now?: () => number }) {
    this.#out = out
    this.#totalBytes = totalBytes
    this.#intervalMs = options.intervalMs
    this.#now = options.now ?? Date.now
  }

  chunk (chunk: Buffer, bytesRead: number, errorCount: number): void {
    for (let i = chunk.indexOf(NEWLINE); i !== -1; i = chunk.indexOf(NEWLINE, i + 1)) this.#lines++
    const now = this.#now()
    if (now - this.#lastAt < this.#intervalMs) return
    this.#lastAt = now
    const percent = Math.floor((bytesRead * 100) / this.#totalBytes)
    const text = `validating: ${percent}% (${mib(bytesRead)} of ${mib(this.#totalBytes)} MiB), ${this.#lines} lines, ${errorCount} errors`
    this.#out.write(`\r${text.padEnd(this.#width)}`)
    this.#width = Math.max(this.#width, text.length)
  }

  /** Leaves the cursor at the start of an empty line, so the report starts clean. */
  done (): void {
    if (this.#width > 0) this.#out.write(`\r${' '.repeat(this.#width)}\r`)
  }
}

function mib (bytes: number): string {
  return (bytes / MiB).toFixed(1)
}
