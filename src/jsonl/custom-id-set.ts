/**
 * The custom_ids seen so far in a batch file, in about 12–24 bytes per id whatever the
 * id's length: open-addressing tables (Uint32Arrays) of 64-bit fingerprints and the line
 * each id was first used on. A Map<string, number> of the ids cost ~80 bytes per short
 * id: measured, 180 MB retained after the 2,223,617 ids of a 1 GiB file of short lines,
 * against 48 MB for this set (`node --expose-gc --import tsx bench/validator.ts --size-mb 1024`).
 *
 * Exactness: a repeated id always has the same fingerprint, so a duplicate is never
 * missed and a file with one is never accepted. Two different ids sharing a fingerprint
 * would be reported as a duplicate of each other (naming both lines). The fingerprint is
 * HalfSipHash-1-3 with a 64-bit output and a random key per set, so the chance of any
 * such pair among n ids is about n² / 2⁶⁵: 1e-7 for 2,000,000 ids, 7e-11 for 50,000;
 * it depends on no property of the ids (the key is secret, so they cannot be chosen to
 * collide, nor to pile up in one probe chain and make inserts slow), and a retry of the
 * same file draws a new key. Confirming a match exactly would need the first id's text,
 * which is what this set exists not to keep; one false report per ten million big files
 * is the price, and it can only ever refuse a good file, never accept a bad one.
 */

// Slot layout in a segment: [fingerprint high word, fingerprint low word, line]; line 0 = empty.
const SLOT = 3
// The table is split by the fingerprint's top bits into segments that grow one at a time:
// doubling a single table briefly holds the old and the new array (1.5× its size at the
// worst moment, +24 MB at 2,000,000 ids); a segment's doubling holds 1/64 of that.
const SEGMENT_BITS = 6
const SEGMENTS = 1 << SEGMENT_BITS
const INITIAL_SEGMENT_SLOTS = 16
// Linear probing stays short (≤ 8.5 probes for a new id on average) up to this load.
const MAX_LOAD = 0.75
// Lines past 2³² − 1 do not fit the table's Uint32; their exact number is kept aside.
const LINE_OVERFLOW = 0xffffffff

/**
 * Most bytes a set of `ids` ids holds: a segment doubles when its load passes 0.75, so it
 * has fewer than 2 / 0.75 slots per id it holds (or its 16 initial ones); 12 bytes a slot.
 * While one segment doubles, its old array lives too: at most half the new one, 16 bytes
 * an id if every id fell in that segment (in practice 1/64 of that). Past line 2³² − 1 an
 * id also costs an entry of the overflow Map (files over 4 GiB only).
 */
export function customIdSetMaxBytes (ids: number): number {
  return SEGMENTS * INITIAL_SEGMENT_SLOTS * SLOT * 4 * 1.5 + 48 * ids
}

export class CustomIdSet {
  readonly #k0: number
  readonly #k1: number
  readonly #segments: Uint32Array[] = []
  readonly #sizes = new Uint32Array(SEGMENTS)
  #size = 0
  #overflowLines: Map<string, number> | null = null
  // The last fingerprint computed, as two words, so no per-id object is allocated.
  #hi = 0
  #lo = 0

  constructor () {
    const key = crypto.getRandomValues(new Uint32Array(2))
    this.#k0 = key[0]!
    this.#k1 = key[1]!
    for (let i = 0; i < SEGMENTS; i++) this.#segments.push(new Uint32Array(INITIAL_SEGMENT_SLOTS * SLOT))
  }

  get size (): number {
    return this.#size
  }

  /** Bytes held by the table (what the set costs, give or take a few objects). */
  get bytes (): number {
    let bytes = 0
    for (const segment of this.#segments) bytes += segment.byteLength
    return bytes
  }

  /**
   * Records `id` as first used on `line` and returns 0, or, when the id (by its
   * fingerprint) was seen before, returns the line it was first used on.
   */
  firstLineOrAdd (id: string, line: number): number {
    return this.#find(id, line, true)
  }

  /**
   * The line `id` was first used on, or 0 when it was never recorded; records nothing,
   * so a set that is only asked this no longer grows (issue #9 item 7: ids past the
   * request limit are compared with the recorded ones, never kept).
   */
  firstLine (id: string): number {
    return this.#find(id, 0, false)
  }

  /**
   * firstLineOrAdd for an ASCII id given as bytes `start` to `end` of `buf` (the batch
   * validator's common case: no string is decoded for it). Same fingerprint as the string:
   * each ASCII byte is one UTF-16 code unit of the same value.
   */
  firstLineOrAddAscii (buf: Uint8Array, start: number, end: number, line: number): number {
    this.#fingerprintAscii(buf, start, end)
    return this.#probe(line, true)
  }

  /** firstLine for an ASCII id given as bytes. */
  firstLineAscii (buf: Uint8Array, start: number, end: number): number {
    this.#fingerprintAscii(buf, start, end)
    return this.#probe(0, false)
  }

  #find (id: string, line: number, add: boolean): number {
    this.#fingerprint(id)
    return this.#probe(line, add)
  }

  /** Looks up (and, with `add`, records) the fingerprint in #hi and #lo. */
  #probe (line: number, add: boolean): number {
    const hi = this.#hi
    const lo = this.#lo
    const s = hi >>> (32 - SEGMENT_BITS)
    const slots = this.#segments[s]!
    const mask = slots.length / SLOT - 1
    for (let i = lo & mask; ; i = (i + 1) & mask) {
      const at = i * SLOT
      const stored = slots[at + 2]!
      if (stored === 0) {
        if (!add) return 0
        const size = this.#sizes[s]! + 1
        if (size > (mask + 1) * MAX_LOAD) {
          this.#grow(s)
          insert(this.#segments[s]!, hi, lo, line)
        } else {
          slots[at] = hi
          slots[at + 1] = lo
          slots[at + 2] = Math.min(line, LINE_OVERFLOW)
        }
        this.#sizes[s] = size
        this.#size++
        if (line >= LINE_OVERFLOW) (this.#overflowLines ??= new Map()).set(`${hi}:${lo}`, line)
        return 0
      }
      if (slots[at] === hi && slots[at + 1] === lo) {
        return stored === LINE_OVERFLOW ? (this.#overflowLines?.get(`${hi}:${lo}`) ?? stored) : stored
      }
    }
  }

  /** Doubles one segment; fingerprints are stored, so nothing is hashed again. */
  #grow (s: number): void {
    const old = this.#segments[s]!
    const slots = new Uint32Array(old.length * 2)
    for (let at = 0; at < old.length; at += SLOT) {
      const line = old[at + 2]!
      if (line !== 0) insert(slots, old[at]!, old[at + 1]!, line)
    }
    this.#segments[s] = slots
  }

  /**
   * HalfSipHash-1-3 (Aumasson; the Linux kernel's hsiphash) with a 64-bit output, over
   * the id's UTF-16 code units taken two per 32-bit word (its UTF-16LE bytes). Sets
   * #hi and #lo. Code units rather than UTF-8 bytes: equal strings have equal units, and
   * reading them needs no encoding step.
   */
  #fingerprint (id: string): void {
    const length = id.length
    let v0 = this.#k0 | 0
    let v1 = this.#k1 ^ 0xee
    let v2 = (0x6c796765 ^ this.#k0) | 0
    let v3 = (0x74656462 ^ this.#k1) | 0
    const words = length >>> 1
    for (let w = 0; w < words; w++) {
      const m = id.charCodeAt(2 * w) | (id.charCodeAt(2 * w + 1) << 16)
      v3 ^= m
      // SIPROUND
      v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16)
      v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2
      v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0
      v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16)
      v0 ^= m
    }
    // The last word: byte length in the top byte, an odd trailing code unit below it.
    const b = ((2 * length) << 24) | ((length & 1) === 1 ? id.charCodeAt(length - 1) : 0)
    v3 ^= b
    v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16)
    v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2
    v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0
    v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16)
    v0 ^= b
    v2 ^= 0xee
    for (let r = 0; r < 3; r++) {
      v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16)
      v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2
      v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0
      v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16)
    }
    this.#lo = (v1 ^ v3) >>> 0
    v1 ^= 0xdd
    for (let r = 0; r < 3; r++) {
      v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16)
      v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2
      v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0
      v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16)
    }
    this.#hi = (v1 ^ v3) >>> 0
  }
  /** #fingerprint over ASCII bytes: kept identical to it but for how a code unit is read. */
  #fingerprintAscii (buf: Uint8Array, start: number, end: number): void {
    const length = end - start
    let v0 = this.#k0 | 0
    let v1 = this.#k1 ^ 0xee
    let v2 = (0x6c796765 ^ this.#k0) | 0
    let v3 = (0x74656462 ^ this.#k1) | 0
    const words = length >>> 1
    for (let w = 0; w < words; w++) {
      const m = buf[start + 2 * w]! | (buf[start + 2 * w + 1]! << 16)
      v3 ^= m
      // SIPROUND
      v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16)
      v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2
      v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0
      v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16)
      v0 ^= m
    }
    // The last word: byte length in the top byte, an odd trailing code unit below it.
    const b = ((2 * length) << 24) | ((length & 1) === 1 ? buf[end - 1]! : 0)
    v3 ^= b
    v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16)
    v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2
    v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0
    v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16)
    v0 ^= b
    v2 ^= 0xee
    for (let r = 0; r < 3; r++) {
      v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16)
      v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2
      v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0
      v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16)
    }
    this.#lo = (v1 ^ v3) >>> 0
    v1 ^= 0xdd
    for (let r = 0; r < 3; r++) {
      v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16)
      v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2
      v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0
      v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16)
    }
    this.#hi = (v1 ^ v3) >>> 0
  }
}

/** Puts a fingerprint known to be absent into the first free slot of its probe chain. */
function insert (slots: Uint32Array, hi: number, lo: number, line: number): void {
  const mask = slots.length / SLOT - 1
  let i = lo & mask
  while (slots[i * SLOT + 2] !== 0) i = (i + 1) & mask
  slots[i * SLOT] = hi
  slots[i * SLOT + 1] = lo
  slots[i * SLOT + 2] = Math.min(line, LINE_OVERFLOW)
}
