/**
 * The byte scanner of src/jsonl/line-scanner.ts, in AssemblyScript, compiled to
 * WebAssembly (`npm run build:wasm`, into src/jsonl/line-scanner.wasm). The grammar, the
 * slots and what `scan` answers are that module's comment; this file is the loop.
 *
 * Why WebAssembly: the same loop in JavaScript, already reading plain string runs four
 * bytes at a time, validated 200-320 MB of short lines per CPU second on this project's
 * 2-core machines; here it reads them 16 bytes at a time (SIMD) without bounds checks,
 * 2.5-3x as fast, and a validated upload is bound by exactly this loop.
 *
 * No allocation, no runtime (`--runtime stub`): fixed offsets in the one linear memory,
 * exported below so the host reads the same layout it is given.
 */

// Results: kinds, escaped and high are a byte per slot, starts and ends an i32 per slot.
export const KINDS: usize = 0
export const ESCAPED: usize = 16
export const HIGH: usize = 32
export const STARTS: usize = 64
export const ENDS: usize = 128
/** body.messages: its entry count (i32), then 1 when every entry is clean (i32). */
export const MESSAGES_AT: usize = 192
const STACK: usize = 256
/** The host writes the roles here: a count byte, then per role a length byte and its bytes. */
export const ROLES: usize = 2048
export const ROLES_END: usize = 4096
const T_STRING: usize = 4096
const T_ESC: usize = 4352
const T_HEX: usize = 4608
const T_WS: usize = 4864
/** Where the host copies the bytes to scan; it keeps 16 bytes of memory after them (SIMD reads). */
export const INPUT: usize = 8192
/** As line-scanner.ts's MAX_DEPTH: the stack above holds this many open containers. */
export const MAX_DEPTH: i32 = 1000

// Kinds and slots, exported so the host can check they are line-scanner.ts's own numbers.
export const K_ABSENT: u8 = 0
export const K_NULL: u8 = 1
export const K_TRUE: u8 = 2
export const K_FALSE: u8 = 3
export const K_NUMBER: u8 = 4
export const K_STRING: u8 = 5
export const K_ARRAY: u8 = 6
export const K_OBJECT: u8 = 7

export const S_CUSTOM_ID: i32 = 0
export const S_METHOD: i32 = 1
export const S_URL: i32 = 2
export const S_BODY: i32 = 3
export const S_MODEL: i32 = 4
export const S_STREAM: i32 = 5
export const S_MESSAGES: i32 = 6
export const S_INPUT: i32 = 7
export const S_PROMPT: i32 = 8

const R_OTHER = 0
const R_TOP = 1
const R_BODY = 2
const R_MESSAGES = 3
const R_MESSAGE = 4

const C_NONE = 0
const C_TOP = 1
const C_SLOT = 2
const C_ELEMENT = 3
const C_ROLE = 4

/** Fills the byte tables; the host calls it once, before any scan. */
export function init (): void {
  for (let b = 0; b < 256; b++) {
    let c: u8 = 0
    if (b < 0x20) c = 3
    else if (b == 0x22) c = 1
    else if (b == 0x5c) c = 2
    else if (b >= 0x80) c = 4
    store<u8>(T_STRING + b, c)
    store<u8>(T_ESC + b, 0)
    store<u8>(T_HEX + b, 0)
    store<u8>(T_WS + b, 0)
  }
  // The characters allowed after a backslash, 'u' aside: " \\ / b f n r t.
  store<u8>(T_ESC + 0x22, 1); store<u8>(T_ESC + 0x5c, 1); store<u8>(T_ESC + 0x2f, 1); store<u8>(T_ESC + 0x62, 1)
  store<u8>(T_ESC + 0x66, 1); store<u8>(T_ESC + 0x6e, 1); store<u8>(T_ESC + 0x72, 1); store<u8>(T_ESC + 0x74, 1)
  for (let b = 0x30; b <= 0x39; b++) store<u8>(T_HEX + b, 1)
  for (let b = 0x41; b <= 0x46; b++) store<u8>(T_HEX + b, 1)
  for (let b = 0x61; b <= 0x66; b++) store<u8>(T_HEX + b, 1)
  store<u8>(T_WS + 0x20, 1); store<u8>(T_WS + 0x09, 1); store<u8>(T_WS + 0x0a, 1); store<u8>(T_WS + 0x0d, 1)
}

let hadEscape = false
let hadHigh = false
let context = C_NONE
let slot = -1
let roleKeys = 0
let roleKnown = false
let messageCount = 0
let messagesClean = true

@inline function at (p: usize): u32 { return <u32>load<u8>(p) }

@inline function skipWs (p: usize, end: usize): usize {
  while (p < end && load<u8>(T_WS + at(p)) == 1) p++
  return p
}

function utf8Sequence (p: usize, end: usize): isize {
  const b0 = at(p)
  if (b0 < 0xc2) return -1
  if (b0 < 0xe0) {
    if (p + 1 >= end || (at(p + 1) & 0xc0) != 0x80) return -1
    return p + 2
  }
  if (b0 < 0xf0) {
    if (p + 2 >= end) return -1
    const b1 = at(p + 1)
    if (b1 < (b0 == 0xe0 ? 0xa0 : 0x80) || b1 > (b0 == 0xed ? 0x9f : 0xbf) || (at(p + 2) & 0xc0) != 0x80) return -1
    return p + 3
  }
  if (b0 < 0xf5) {
    if (p + 3 >= end) return -1
    const b1 = at(p + 1)
    if (b1 < (b0 == 0xf0 ? 0x90 : 0x80) || b1 > (b0 == 0xf4 ? 0x8f : 0xbf) || (at(p + 2) & 0xc0) != 0x80 || (at(p + 3) & 0xc0) != 0x80) return -1
    return p + 4
  }
  return -1
}

/**
 * The position of the closing quote of the string whose content starts at p, or -1: raw
 * control characters, bad escapes and ill-formed UTF-8 are refused. Sets hadEscape, hadHigh.
 */
function scanString (p: usize, end: usize): isize {
  let escape = false
  let high = false
  const quote = i8x16.splat(0x22)
  const bslash = i8x16.splat(0x5c)
  const ctl = i8x16.splat(0x20)
  while (true) {
    // 16 bytes at a time (the input has 16 bytes of slack after it).
    while (p < end) {
      const v = v128.load(p)
      const special = v128.or(v128.or(i8x16.eq(v, quote), i8x16.eq(v, bslash)), v128.or(i8x16.lt_u(v, ctl), i8x16.lt_s(v, i8x16.splat(0))))
      const mask = i8x16.bitmask(special)
      if (mask != 0) { p += <usize>ctz(mask); break }
      p += 16
    }
    if (p >= end) return -1
    const cls = load<u8>(T_STRING + at(p))
    if (cls == 1) {
      hadEscape = escape
      hadHigh = high
      return p
    }
    if (cls == 2) {
      escape = true
      if (p + 1 >= end) return -1
      const e = at(p + 1)
      if (e == 0x75) {
        if (p + 6 > end || load<u8>(T_HEX + at(p + 2)) != 1 || load<u8>(T_HEX + at(p + 3)) != 1 || load<u8>(T_HEX + at(p + 4)) != 1 || load<u8>(T_HEX + at(p + 5)) != 1) return -1
        p += 6
      } else if (load<u8>(T_ESC + e) == 1) {
        p += 2
      } else return -1
    } else if (cls == 3) {
      return -1
    } else {
      high = true
      const q = utf8Sequence(p, end)
      if (q < 0) return -1
      p = <usize>q
    }
  }
  return -1
}

@inline function isDigit (p: usize, end: usize): bool {
  return p < end && at(p) - 0x30 <= 9
}

function number (p: usize, end: usize): isize {
  if (at(p) == 0x2d) p++
  if (p >= end) return -1
  const first = at(p)
  if (first == 0x30) p++
  else if (first > 0x30 && first <= 0x39) {
    p++
    while (isDigit(p, end)) p++
  } else return -1
  if (p < end && at(p) == 0x2e) {
    p++
    if (!isDigit(p, end)) return -1
    while (isDigit(p, end)) p++
  }
  if (p < end && (at(p) | 0x20) == 0x65) {
    p++
    if (p < end && (at(p) == 0x2b || at(p) == 0x2d)) p++
    if (!isDigit(p, end)) return -1
    while (isDigit(p, end)) p++
  }
  return p
}

// Keys are told apart by length, then compared as little-endian words (no string data:
// the module has no data segment, so nothing lies in the memory the layout above uses).
function topSlot (p: usize, end: usize): i32 {
  switch (<i32>(end - p)) {
    case 9: return load<u64>(p) == 0x695f6d6f74737563 && at(p + 8) == 0x64 ? S_CUSTOM_ID : -1 // custom_id
    case 6: return load<u32>(p) == 0x6874656d && load<u16>(p + 4) == 0x646f ? S_METHOD : -1 // method
    case 3: return load<u16>(p) == 0x7275 && at(p + 2) == 0x6c ? S_URL : -1 // url
    case 4: return load<u32>(p) == 0x79646f62 ? S_BODY : -1 // body
    default: return -1
  }
}

function bodySlot (p: usize, end: usize): i32 {
  switch (<i32>(end - p)) {
    case 5: {
      const w = load<u32>(p)
      const last = at(p + 4)
      return w == 0x65646f6d && last == 0x6c ? S_MODEL : w == 0x75706e69 && last == 0x74 ? S_INPUT : -1 // model, input
    }
    case 6: {
      const w = load<u32>(p)
      const last = load<u16>(p + 4)
      return w == 0x65727473 && last == 0x6d61 ? S_STREAM : w == 0x6d6f7270 && last == 0x7470 ? S_PROMPT : -1 // stream, prompt
    }
    case 8: return load<u64>(p) == 0x736567617373656d ? S_MESSAGES : -1 // messages
    default: return -1
  }
}

function isRole (p: usize, end: usize): bool {
  const count = <i32>load<u8>(ROLES)
  let r: usize = ROLES + 1
  for (let i = 0; i < count; i++) {
    const n = <usize>load<u8>(r)
    if (end - p == n) {
      let same = true
      for (let j: usize = 0; j < n; j++) if (at(p + j) != at(r + 1 + j)) { same = false; break }
      if (same) return true
    }
    r += 1 + n
  }
  return false
}

function key (p: usize, end: usize, role: i32): isize {
  p = skipWs(p, end)
  if (p >= end || at(p) != 0x22) return -1
  const q = scanString(p + 1, end)
  if (q < 0 || hadEscape) return -1
  context = C_NONE
  slot = -1
  if (role == R_TOP || role == R_BODY) {
    const s = role == R_TOP ? topSlot(p + 1, <usize>q) : bodySlot(p + 1, <usize>q)
    if (s >= 0) {
      if (load<u8>(KINDS + s) != K_ABSENT) return -1
      context = C_SLOT
      slot = s
    }
  } else if (role == R_MESSAGE && <usize>q - p - 1 == 4 && load<u32>(p + 1) == 0x656c6f72) { // role
    roleKeys++
    context = C_ROLE
  }
  p = skipWs(<usize>q + 1, end)
  if (p >= end || at(p) != 0x3a) return -1
  return p + 1
}

/**
 * At the first member or element of a container, or after a comma: an object's next key
 * (key sets the context and slot of its value), or the context of an array's next element.
 * The position after it, or -1.
 */
@inline function next (p: usize, end: usize, object: bool, role: i32): isize {
  if (object) return key(p, end, role)
  context = role == R_MESSAGES ? C_ELEMENT : C_NONE
  return p
}

@inline function endMessage (): void {
  if (roleKeys != 1 || !roleKnown) messagesClean = false
}

@inline function lit (p: usize, end: usize, w: u32, n: usize): bool {
  // w: the word's bytes little-endian (4 bytes of true/null, or 'alse' of false).
  return p + n <= end && load<u32>(p + n - 4) == w
}

/**
 * Whether bytes `start` to `end` of memory are a line the scanner decided (line-scanner.ts).
 * String slots' positions are stored as offsets from `base`, where the host's buffer begins.
 */
export function scan (start: usize, end: usize, base: usize): i32 {
  memory.fill(KINDS, 0, 9)
  messageCount = 0
  messagesClean = true
  let depth = 0
  context = C_TOP
  slot = -1
  let p = start
  while (true) {
    p = skipWs(p, end)
    if (p >= end) return 0
    const c = at(p)
    if (context == C_TOP && c != 0x7b) return 0
    let kind: u8
    if (c == 0x22) {
      const q = scanString(p + 1, end)
      if (q < 0) return 0
      if (context == C_SLOT) {
        store<i32>(STARTS + (<usize>slot << 2), <i32>(p + 1 - base))
        store<i32>(ENDS + (<usize>slot << 2), <i32>(<usize>q - base))
        store<u8>(ESCAPED + slot, hadEscape ? 1 : 0)
        store<u8>(HIGH + slot, hadHigh ? 1 : 0)
      } else if (context == C_ROLE) {
        roleKnown = !hadEscape && isRole(p + 1, <usize>q)
      }
      kind = K_STRING
      p = <usize>q + 1
    } else if (c == 0x7b || c == 0x5b) {
      if (depth == MAX_DEPTH) return 0
      const object = c == 0x7b
      let role = R_OTHER
      if (object) {
        if (context == C_TOP) role = R_TOP
        else if (context == C_SLOT && slot == S_BODY) role = R_BODY
        else if (context == C_ELEMENT) {
          role = R_MESSAGE
          roleKeys = 0
          roleKnown = false
        }
      } else if (context == C_SLOT && slot == S_MESSAGES) {
        role = R_MESSAGES
      }
      kind = object ? K_OBJECT : K_ARRAY
      if (context == C_SLOT) store<u8>(KINDS + slot, kind)
      else if (context == C_ELEMENT) {
        messageCount++
        if (!object) messagesClean = false
      }
      store<u8>(STACK + depth, <u8>(role * 2 + (object ? 1 : 0)))
      depth++
      p = skipWs(p + 1, end)
      if (p >= end) return 0
      if (at(p) != (object ? 0x7d : 0x5d)) {
        const k = next(p, end, object, role)
        if (k < 0) return 0
        p = <usize>k
        continue
      }
      p++
      depth--
      if (role == R_MESSAGE) endMessage()
    } else {
      if (c == 0x74) {
        if (!lit(p, end, 0x65757274, 4)) return 0
        kind = K_TRUE
        p += 4
      } else if (c == 0x66) {
        if (!lit(p, end, 0x65736c61, 5)) return 0
        kind = K_FALSE
        p += 5
      } else if (c == 0x6e) {
        if (!lit(p, end, 0x6c6c756e, 4)) return 0
        kind = K_NULL
        p += 4
      } else {
        const q = number(p, end)
        if (q < 0) return 0
        p = <usize>q
        kind = K_NUMBER
      }
    }
    if (kind != K_OBJECT && kind != K_ARRAY) {
      if (context == C_SLOT) store<u8>(KINDS + slot, kind)
      else if (context == C_ELEMENT) {
        messageCount++
        messagesClean = false
      } else if (context == C_ROLE && kind != K_STRING) roleKnown = false
    }
    while (true) {
      if (depth == 0) {
        const ok = skipWs(p, end) == end
        store<i32>(MESSAGES_AT, messageCount)
        store<i32>(MESSAGES_AT + 4, messagesClean ? 1 : 0)
        return ok ? 1 : 0
      }
      p = skipWs(p, end)
      if (p >= end) return 0
      const top = <i32>load<u8>(STACK + depth - 1)
      const object = (top & 1) == 1
      const role = top >> 1
      const d = at(p)
      if (d == 0x2c) {
        const k = next(p + 1, end, object, role)
        if (k < 0) return 0
        p = <usize>k
        break
      }
      if (d != (object ? 0x7d : 0x5d)) return 0
      p++
      depth--
      if (role == R_MESSAGE) endMessage()
    }
  }
  return 0
}
