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
 */

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

// What an open container is to the rules (kept on the stack, times 2, plus 1 for an object).
const R_OTHER = 0
const R_TOP = 1
const R_BODY = 2
const R_MESSAGES = 3
const R_MESSAGE = 4

// What the value about to be read is to the rules.
const C_NONE = 0
const C_TOP = 1
const C_SLOT = 2
const C_ELEMENT = 3
const C_ROLE = 4

/**
 * Deeper lines go to `JSON.parse` (which, in V8, parses without recursion and so takes any
 * depth): they are rare, and a fixed stack keeps the scanner free of per-line allocation.
 */
export const MAX_DEPTH = 1000

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const COLON = 0x3a
const LBRACE = 0x7b
const RBRACE = 0x7d
const LBRACKET = 0x5b
const RBRACKET = 0x5d
const MINUS = 0x2d
const PLUS = 0x2b
const DOT = 0x2e
const ZERO = 0x30

// Bytes inside a string: 0 plain, 1 quote, 2 backslash, 3 control (refused), 4 UTF-8 lead or stray.
const STRING_CLASS = new Uint8Array(256)
for (let b = 0; b < 0x20; b++) STRING_CLASS[b] = 3
STRING_CLASS[QUOTE] = 1
STRING_CLASS[BACKSLASH] = 2
for (let b = 0x80; b < 0x100; b++) STRING_CLASS[b] = 4
// The characters allowed after a backslash, 'u' aside.
const SIMPLE_ESCAPE = new Uint8Array(256)
for (const c of '"\\/bfnrt') SIMPLE_ESCAPE[c.charCodeAt(0)] = 1
const HEX = new Uint8Array(256)
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1
// JSON's whitespace: space, tab, LF, CR; nothing else (no BOM, no NBSP).
const WS = new Uint8Array(256)
for (const b of [0x20, 0x09, 0x0a, 0x0d]) WS[b] = 1

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0))
const CUSTOM_ID = ascii('custom_id')
const METHOD = ascii('method')
const URL = ascii('url')
const BODY = ascii('body')
const MODEL = ascii('model')
const STREAM = ascii('stream')
const MESSAGES = ascii('messages')
const INPUT = ascii('input')
const PROMPT = ascii('prompt')
const ROLE_KEY = ascii('role')
const TRUE = ascii('true')
const FALSE = ascii('false')
const NULL = ascii('null')

/** True when bytes `start` to `end` of `buf` are exactly `pattern`. */
export function bytesEqual (buf: Uint8Array, start: number, end: number, pattern: Uint8Array): boolean {
  const length = pattern.length
  if (end - start !== length) return false
  for (let i = 0; i < length; i++) {
    if (buf[start + i] !== pattern[i]) return false
  }
  return true
}

/** The slot of a top-level key (bytes `start` to `end`), or -1; by length first, as it runs for every key. */
function topSlot (buf: Uint8Array, start: number, end: number): number {
  switch (end - start) {
    case 9: return bytesEqual(buf, start, end, CUSTOM_ID) ? S_CUSTOM_ID : -1
    case 6: return bytesEqual(buf, start, end, METHOD) ? S_METHOD : -1
    case 3: return bytesEqual(buf, start, end, URL) ? S_URL : -1
    case 4: return bytesEqual(buf, start, end, BODY) ? S_BODY : -1
    default: return -1
  }
}

/** The slot of a body key, or -1. */
function bodySlot (buf: Uint8Array, start: number, end: number): number {
  switch (end - start) {
    case 5: return bytesEqual(buf, start, end, MODEL) ? S_MODEL : bytesEqual(buf, start, end, INPUT) ? S_INPUT : -1
    case 6: return bytesEqual(buf, start, end, STREAM) ? S_STREAM : bytesEqual(buf, start, end, PROMPT) ? S_PROMPT : -1
    case 8: return bytesEqual(buf, start, end, MESSAGES) ? S_MESSAGES : -1
    default: return -1
  }
}

/** Bytes `start` to `end` of `buf` are exactly the ASCII `word` at `p`, e.g. `true`. */
function literalAt (buf: Uint8Array, p: number, end: number, word: Uint8Array): boolean {
  return p + word.length <= end && bytesEqual(buf, p, p + word.length, word)
}

/**
 * The end of one well-formed UTF-8 sequence starting at `p` (a byte ≥ 0x80), or -1: no
 * overlong forms, no surrogates (ED A0..BF), nothing past U+10FFFF (Unicode's Table 3-7,
 * what `isUtf8` checks).
 */
function utf8Sequence (buf: Uint8Array, p: number, end: number): number {
  const b0 = buf[p]!
  if (b0 < 0xc2) return -1
  if (b0 < 0xe0) {
    if (p + 1 >= end || (buf[p + 1]! & 0xc0) !== 0x80) return -1
    return p + 2
  }
  if (b0 < 0xf0) {
    if (p + 2 >= end) return -1
    const b1 = buf[p + 1]!
    if (b1 < (b0 === 0xe0 ? 0xa0 : 0x80) || b1 > (b0 === 0xed ? 0x9f : 0xbf) || (buf[p + 2]! & 0xc0) !== 0x80) return -1
    return p + 3
  }
  if (b0 < 0xf5) {
    if (p + 3 >= end) return -1
    const b1 = buf[p + 1]!
    if (b1 < (b0 === 0xf0 ? 0x90 : 0x80) || b1 > (b0 === 0xf4 ? 0x8f : 0xbf) || (buf[p + 2]! & 0xc0) !== 0x80 || (buf[p + 3]! & 0xc0) !== 0x80) return -1
    return p + 4
  }
  return -1
}

function skipWs (buf: Uint8Array, p: number, end: number): number {
  while (p < end && WS[buf[p]!] === 1) p++
  return p
}

function isDigit (b: number | undefined): boolean {
  return b !== undefined && b >= ZERO && b <= 0x39
}

export class LineScanner {
  /** Per slot: the value's kind (K_*), and for a string its content's bytes and whether it has escapes. */
  readonly kinds = new Uint8Array(SLOTS)
  readonly starts = new Int32Array(SLOTS)
  readonly ends = new Int32Array(SLOTS)
  readonly escaped = new Uint8Array(SLOTS)
  /** Per string slot: 1 when it has a byte ≥ 0x80 (so it is not ASCII). */
  readonly high = new Uint8Array(SLOTS)
  /** Entries of body.messages when it is an array. */
  messageCount = 0
  /** Every body.messages entry is an object with exactly one role, an unescaped well-known one. */
  messagesClean = true
  readonly #roles: Uint8Array[]
  readonly #stack = new Uint8Array(MAX_DEPTH)
  // Set by #key: what the value after the key is to the rules.
  #context = C_NONE
  #slot = -1
  // The message entry being read: its role keys, and whether the role is a known one.
  #roleKeys = 0
  #roleKnown = false

  /** `roles`: the message roles that pass the rules (ASCII). */
  constructor (roles: Iterable<string>) {
    this.#roles = [...roles].map(ascii)
  }

  /** Whether bytes `start` to `end` of `buf` are a line the scanner decided; see the module's comment. */
  scan (buf: Uint8Array, start: number, end: number): boolean {
    if (buf.buffer !== wordsOf) {
      wordsOf = buf.buffer
      words = new Int32Array(buf.buffer, 0, buf.buffer.byteLength >> 2)
    }
    wordsBase = buf.byteOffset
    const kinds = this.kinds
    kinds.fill(K_ABSENT)
    this.messageCount = 0
    this.messagesClean = true
    const stack = this.#stack
    let depth = 0
    let context = C_TOP
    let slot = -1
    let p = start
    for (;;) {
      // One value at p.
      p = skipWs(buf, p, end)
      if (p >= end) return false
      const c = buf[p]!
      // Other lines are errors, and errors are worded by the JSON.parse path.
      if (context === C_TOP && c !== LBRACE) return false
      let kind: number
      if (c === QUOTE) {
        const q = scanString(buf, p + 1, end)
        if (q < 0) return false
        if (context === C_SLOT) {
          this.starts[slot] = p + 1
          this.ends[slot] = q
          this.escaped[slot] = hadEscape ? 1 : 0
          this.high[slot] = hadHigh ? 1 : 0
        } else if (context === C_ROLE) {
          this.#roleKnown = !hadEscape && this.#isRole(buf, p + 1, q)
        }
        kind = K_STRING
        p = q + 1
      } else if (c === LBRACE || c === LBRACKET) {
        if (depth === MAX_DEPTH) return false
        const object = c === LBRACE
        let role = R_OTHER
        if (object) {
          if (context === C_TOP) role = R_TOP
          else if (context === C_SLOT && slot === S_BODY) role = R_BODY
          else if (context === C_ELEMENT) {
            role = R_MESSAGE
            this.#roleKeys = 0
            this.#roleKnown = false
          }
        } else if (context === C_SLOT && slot === S_MESSAGES) {
          role = R_MESSAGES
        }
        kind = object ? K_OBJECT : K_ARRAY
        if (context === C_SLOT) kinds[slot] = kind
        else if (context === C_ELEMENT) {
          this.messageCount++
          if (!object) this.messagesClean = false
        }
        stack[depth++] = role * 2 + (object ? 1 : 0)
        p = skipWs(buf, p + 1, end)
        if (p >= end) return false
        if (buf[p] !== (object ? RBRACE : RBRACKET)) {
          // The first key, or the first entry.
          if (object) {
            p = this.#key(buf, p, end, role)
            if (p < 0) return false
            context = this.#context
            slot = this.#slot
          } else {
            context = role === R_MESSAGES ? C_ELEMENT : C_NONE
          }
          continue
        }
        p++
        depth--
        if (role === R_MESSAGE) this.#endMessage()
      } else {
        if (c === 0x74) {
          if (!literalAt(buf, p, end, TRUE)) return false
          kind = K_TRUE
          p += 4
        } else if (c === 0x66) {
          if (!literalAt(buf, p, end, FALSE)) return false
          kind = K_FALSE
          p += 5
        } else if (c === 0x6e) {
          if (!literalAt(buf, p, end, NULL)) return false
          kind = K_NULL
          p += 4
        } else {
          p = number(buf, p, end)
          if (p < 0) return false
          kind = K_NUMBER
        }
      }
      if (kind !== K_OBJECT && kind !== K_ARRAY) {
        if (context === C_SLOT) kinds[slot] = kind
        else if (context === C_ELEMENT) {
          this.messageCount++
          this.messagesClean = false
        } else if (context === C_ROLE && kind !== K_STRING) this.#roleKnown = false
      }
      // After a value: close containers until a comma opens the next value.
      for (;;) {
        if (depth === 0) return skipWs(buf, p, end) === end
        p = skipWs(buf, p, end)
        if (p >= end) return false
        const top = stack[depth - 1]!
        const object = (top & 1) === 1
        const role = top >> 1
        const d = buf[p]!
        if (d === COMMA) {
          p++
          if (object) {
            p = this.#key(buf, p, end, role)
            if (p < 0) return false
            context = this.#context
            slot = this.#slot
          } else {
            context = role === R_MESSAGES ? C_ELEMENT : C_NONE
          }
          break
        }
        if (d !== (object ? RBRACE : RBRACKET)) return false
        p++
        depth--
        if (role === R_MESSAGE) this.#endMessage()
      }
    }
  }

  /**
   * Reads `"key" :` at p (whitespace first) inside an object of `role`; returns the
   * position after the colon, or -1 for a grammar error, an escaped key or a repeated key
   * the rules read. Sets #context and #slot for the value.
   */
  #key (buf: Uint8Array, p: number, end: number, role: number): number {
    p = skipWs(buf, p, end)
    if (p >= end || buf[p] !== QUOTE) return -1
    const q = scanString(buf, p + 1, end)
    if (q < 0 || hadEscape) return -1
    this.#context = C_NONE
    this.#slot = -1
    if (role === R_TOP || role === R_BODY) {
      const slot = role === R_TOP ? topSlot(buf, p + 1, q) : bodySlot(buf, p + 1, q)
      if (slot >= 0) {
        // A kind already set means the key came before (every value sets one).
        if (this.kinds[slot] !== K_ABSENT) return -1
        this.#context = C_SLOT
        this.#slot = slot
      }
    } else if (role === R_MESSAGE && bytesEqual(buf, p + 1, q, ROLE_KEY)) {
      this.#roleKeys++
      this.#context = C_ROLE
    }
    p = skipWs(buf, q + 1, end)
    if (p >= end || buf[p] !== COLON) return -1
    return p + 1
  }

  #endMessage (): void {
    if (this.#roleKeys !== 1 || !this.#roleKnown) this.messagesClean = false
  }

  #isRole (buf: Uint8Array, start: number, end: number): boolean {
    for (const role of this.#roles) {
      if (bytesEqual(buf, start, end, role)) return true
    }
    return false
  }

}

// The line's ArrayBuffer as 32-bit words, and the offset of the line's buffer in it, set by
// LineScanner.scan for scanString; a view is made once per chunk, not per line.
let words: Int32Array<ArrayBufferLike> = new Int32Array(0)
let wordsOf: ArrayBufferLike | null = null
let wordsBase = 0

/**
 * Whether any of the word's 4 bytes is special in a string: ≥ 0x80, < 0x20, '"' or '\\'
 * (the classic "has a byte less than n" and "has a zero byte" tests; a word that passes
 * has none, one that fails is read byte by byte).
 */
function hasSpecialByte (x: number): boolean {
  const q = x ^ 0x22222222
  const s = x ^ 0x5c5c5c5c
  return ((x | ((x - 0x20202020) & ~x) | ((q - 0x01010101) & ~q) | ((s - 0x01010101) & ~s)) & 0x80808080) !== 0
}

// Set by scanString: whether the string just read had an escape (a module variable, not a
// returned object, so reading a string allocates nothing).
let hadEscape = false
// And whether it had a byte ≥ 0x80.
let hadHigh = false

/**
 * The position of the closing quote of the string whose content starts at `p`, or -1:
 * raw control characters, bad escapes and ill-formed UTF-8 are refused. Sets hadEscape.
 */
function scanString (buf: Uint8Array, p: number, end: number): number {
  let escape = false
  let high = false
  const table = STRING_CLASS
  const base = wordsBase
  for (;;) {
    // Nearly all of a line is string content: these loops are the scanner's speed. Plain
    // runs go four bytes at a time where the bytes are 4-aligned in their ArrayBuffer.
    let cls = 0
    while (p < end && ((base + p) & 3) !== 0 && (cls = table[buf[p]!]!) === 0) p++
    // Only from an aligned p: a word starting before p would re-read bytes already taken.
    if (cls === 0 && ((base + p) & 3) === 0) {
      let i = (base + p) >> 2
      const stop = (base + end) >> 2
      while (i < stop && !hasSpecialByte(words[i]!)) i++
      p = (i << 2) - base
    }
    while (p < end && (cls = table[buf[p]!]!) === 0) p++
    if (p >= end) return -1
    if (cls === 1) {
      hadEscape = escape
      hadHigh = high
      return p
    }
    if (cls === 2) {
      escape = true
      if (p + 1 >= end) return -1
      const e = buf[p + 1]!
      if (e === 0x75) {
        // \uXXXX; a lone surrogate is valid JSON (JSON.parse makes a lone UTF-16 unit).
        if (p + 6 > end || HEX[buf[p + 2]!] !== 1 || HEX[buf[p + 3]!] !== 1 || HEX[buf[p + 4]!] !== 1 || HEX[buf[p + 5]!] !== 1) return -1
        p += 6
      } else if (SIMPLE_ESCAPE[e] === 1) {
        p += 2
      } else {
        return -1
      }
    } else if (cls === 3) {
      return -1
    } else {
      high = true
      p = utf8Sequence(buf, p, end)
      if (p < 0) return -1
    }
  }
}

/** The end of the number at p, or -1: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
function number (buf: Uint8Array, p: number, end: number): number {
  if (buf[p] === MINUS) p++
  if (p >= end) return -1
  const first = buf[p]!
  if (first === ZERO) {
    p++
  } else if (first > ZERO && first <= 0x39) {
    p++
    while (p < end && isDigit(buf[p])) p++
  } else {
    return -1
  }
  if (p < end && buf[p] === DOT) {
    p++
    if (p >= end || !isDigit(buf[p])) return -1
    while (p < end && isDigit(buf[p])) p++
  }
  if (p < end && (buf[p]! | 0x20) === 0x65) {
    p++
    if (p < end && (buf[p] === PLUS || buf[p] === MINUS)) p++
    if (p >= end || !isDigit(buf[p])) return -1
    while (p < end && isDigit(buf[p])) p++
  }
  return p
}
