/**
 * A byte-level check of one batch line: the whole JSON grammar (RFC 8259 as V8's
 * `JSON.parse` takes it) and UTF-8, without building the objects `JSON.parse` builds.
 * It records only what the batch rules read: the kind and the bytes of the top-level
 * custom_id, method, url and body, of body.model, body.stream, body.messages, body.input
 * and body.prompt, and whether every body.messages entry is an object with one
 * well-known role.
 *
 * `scan` answers true only when it could decide the line completely: valid UTF-8, valid
 * JSON, a top-level object, no escaped key, no key the rules read given twice
 * (`JSON.parse` keeps the last one) and nesting within MAX_DEPTH. Any other line is left
 * to the `JSON.parse` path, which then gives the verdict and the message: the scanner
 * never has to word an error, so it cannot word one differently.
 *
 * The loop itself is WebAssembly (wasm/line-scanner.ts, built by `npm run build:wasm`
 * into line-scanner.wasm beside this file): this module copies the bytes in, calls it, and
 * shows its results as the typed arrays below.
 */

import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** Value kinds, as the rules tell them apart. */
export const K_ABSENT = 0
export const K_NULL = 1
export const K_TRUE = 2
export const K_FALSE = 3
export const K_NUMBER = 4
export const K_STRING = 5
export const K_ARRAY = 6
export const K_OBJECT = 7

/** The slots: top-level keys, then body keys. */
export const S_CUSTOM_ID = 0
export const S_METHOD = 1
export const S_URL = 2
export const S_BODY = 3
export const S_MODEL = 4
export const S_STREAM = 5
export const S_MESSAGES = 6
export const S_INPUT = 7
export const S_PROMPT = 8
const SLOTS = 9

/**
 * Deeper lines go to `JSON.parse` (which, in V8, parses without recursion and so takes any
 * depth): they are rare, and a fixed stack keeps the scanner free of per-line allocation.
 */
export const MAX_DEPTH = 1000

/** True when bytes `start` to `end` of `buf` are exactly `pattern`. */
export function bytesEqual (buf: Uint8Array, start: number, end: number, pattern: Uint8Array): boolean {
  const length = pattern.length
  if (end - start !== length) return false
  for (let i = 0; i < length; i++) {
    if (buf[start + i] !== pattern[i]) return false
  }
  return true
}

interface ScannerExports {
  memory: WebAssembly.Memory
  init: () => void
  scan: (start: number, end: number, base: number) => number
  KINDS: WebAssembly.Global
  ESCAPED: WebAssembly.Global
  HIGH: WebAssembly.Global
  STARTS: WebAssembly.Global
  ENDS: WebAssembly.Global
  MESSAGES_AT: WebAssembly.Global
  ROLES: WebAssembly.Global
  ROLES_END: WebAssembly.Global
  INPUT: WebAssembly.Global
  MAX_DEPTH: WebAssembly.Global
}

/** The scanner's layout before its input (wasm/line-scanner.ts's INPUT). */
const LAYOUT_BYTES = 8192

/** The numbers both sides must share: kinds, slots, the depth and the layout. */
const SHARED: Record<string, number> = {
  K_ABSENT, K_NULL, K_TRUE, K_FALSE, K_NUMBER, K_STRING, K_ARRAY, K_OBJECT,
  S_CUSTOM_ID, S_METHOD, S_URL, S_BODY, S_MODEL, S_STREAM, S_MESSAGES, S_INPUT, S_PROMPT,
  MAX_DEPTH, INPUT: LAYOUT_BYTES
}

function agrees (wasm: ScannerExports): boolean {
  const exports = wasm as unknown as Record<string, WebAssembly.Global | undefined>
  return Object.entries(SHARED).every(([name, value]) => exports[name]?.value === value)
}

const WASM_URL = new URL('./line-scanner.wasm', import.meta.url)
let compiled: WebAssembly.Module | null = null

/** Compiled once per thread, on first use; a missing file is a build step not run, said so. */
function scannerModule (): WebAssembly.Module {
  if (compiled !== null) return compiled
  let bytes: Uint8Array<ArrayBuffer>
  try {
    bytes = readFileSync(WASM_URL)
  } catch (error) {
    throw new Error(`the line scanner's WebAssembly is missing (${fileURLToPath(WASM_URL)}): run \`npm run build:wasm\` (npm test, npm run build and npm run dev run it)`, { cause: error })
  }
  compiled = new WebAssembly.Module(bytes)
  return compiled
}

/**
 * Buffers up to this size are copied into the scanner's memory whole, once for all their
 * lines (a 64 KiB socket chunk, a 256 KiB check slice); a larger one (a long line the
 * splitter joined, a big read) has each line copied alone. So the scanner's memory stays
 * within max(this, the longest line) plus its 8 KiB of layout (memory-bound.ts counts it).
 */
export const SCANNER_WHOLE_COPY_BYTES = 1024 * 1024
/** The 16 bytes after the input that the scanner's SIMD reads may touch. */
const SLACK = 16
const PAGE = 65536

/**
 * Most bytes one scanner's memory reaches for lines of at most `maxLineBytes`: it only
 * grows (WebAssembly memory never shrinks), and the validators of a thread share one
 * scanner for the thread's life (lineScannerFor).
 */
export function scannerMaxBytes (maxLineBytes: number): number {
  return Math.ceil((LAYOUT_BYTES + Math.max(SCANNER_WHOLE_COPY_BYTES, maxLineBytes) + SLACK) / PAGE) * PAGE
}

export class LineScanner {
  /** Per slot: the value's kind (K_*), and for a string its content's bytes and whether it has escapes. */
  kinds!: Uint8Array
  starts!: Int32Array
  ends!: Int32Array
  escaped!: Uint8Array
  /** Per string slot: 1 when it has a byte ≥ 0x80 (so it is not ASCII). */
  high!: Uint8Array
  readonly #wasm: ScannerExports
  readonly #input: number
  #bytes!: Uint8Array
  #messages!: Int32Array
  // The buffer whose bytes are in memory at #input, until forget(): its lines need no copy.
  #loaded: Uint8Array | null = null

  /** `roles`: the message roles that pass the rules (ASCII). Validators share one: lineScannerFor. */
  constructor (roles: Iterable<string>) {
    this.#wasm = new WebAssembly.Instance(scannerModule()).exports as unknown as ScannerExports
    const wasm = this.#wasm
    if (!agrees(wasm)) throw new Error('line-scanner.wasm was built from another version of the scanner: run `npm run build:wasm`')
    this.#input = LAYOUT_BYTES
    this.#views()
    wasm.init()
    let at = wasm.ROLES.value as number
    const list = [...roles]
    const bytes = this.#bytes
    bytes[at++] = list.length
    for (const role of list) {
      if (role.length > 255 || at + 1 + role.length > (wasm.ROLES_END.value as number)) throw new RangeError('the message roles do not fit the scanner')
      bytes[at++] = role.length
      for (let i = 0; i < role.length; i++) bytes[at++] = role.charCodeAt(i)
    }
  }

  /** Entries of body.messages when it is an array. */
  get messageCount (): number {
    return this.#messages[0]!
  }

  /** Every body.messages entry is an object with exactly one role, an unescaped well-known one. */
  get messagesClean (): boolean {
    return this.#messages[1] === 1
  }

  /**
   * The buffer given to scan may have changed since it was copied in: the validator says
   * so before each new chunk (a chunk's bytes do not change while its lines are scanned).
   */
  forget (): void {
    this.#loaded = null
  }

  /**
   * Whether bytes `start` to `end` of `buf` are a line the scanner decided; see the
   * module's comment. `buf` must not change until forget() is called.
   */
  scan (buf: Uint8Array, start: number, end: number): boolean {
    let base: number
    if (buf === this.#loaded) {
      base = this.#input
    } else if (buf.length <= SCANNER_WHOLE_COPY_BYTES) {
      if (!this.#reserve(buf.length)) return false
      this.#bytes.set(buf, this.#input)
      this.#loaded = buf
      base = this.#input
    } else {
      if (!this.#reserve(end - start)) return false
      this.#bytes.set(buf.subarray(start, end), this.#input)
      this.#loaded = null
      base = this.#input - start
    }
    return this.#wasm.scan(base + start, base + end, base) === 1
  }

  /** Grows the memory to hold `length` bytes of input; false when it cannot (the JSON.parse path decides). */
  #reserve (length: number): boolean {
    const need = this.#input + length + SLACK
    const memory = this.#wasm.memory
    if (need <= memory.buffer.byteLength) return true
    try {
      memory.grow(Math.ceil((need - memory.buffer.byteLength) / PAGE))
    } catch {
      return false
    }
    this.#views()
    return true
  }

  /** Views of the layout; a grown memory has a new ArrayBuffer, so they are made again. */
  #views (): void {
    const wasm = this.#wasm
    const buffer = wasm.memory.buffer
    this.#bytes = new Uint8Array(buffer)
    this.kinds = new Uint8Array(buffer, wasm.KINDS.value as number, SLOTS)
    this.escaped = new Uint8Array(buffer, wasm.ESCAPED.value as number, SLOTS)
    this.high = new Uint8Array(buffer, wasm.HIGH.value as number, SLOTS)
    this.starts = new Int32Array(buffer, wasm.STARTS.value as number, SLOTS)
    this.ends = new Int32Array(buffer, wasm.ENDS.value as number, SLOTS)
    this.#messages = new Int32Array(buffer, wasm.MESSAGES_AT.value as number, 2)
  }
}

const shared = new Map<string, LineScanner>()

/**
 * The thread's scanner for these roles, made on first use. One per thread, not one per
 * validator: each WebAssembly memory reserves gigabytes of address space and is freed
 * only by a full collection of its thread, so a busy replica making one per upload could
 * run out of them. Sharing is safe because a scan is synchronous, its results are read
 * before the next one, and every validator calls forget() before its own lines.
 */
export function lineScannerFor (roles: readonly string[]): LineScanner {
  const key = roles.join('\n')
  let scanner = shared.get(key)
  if (scanner === undefined) {
    scanner = new LineScanner(roles)
    shared.set(key, scanner)
  }
  return scanner
}
