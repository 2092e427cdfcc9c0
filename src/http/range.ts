import type { ByteRange } from '../storage/blob-store.js'

export type RangeRequest =
  | { kind: 'none' }
  | { kind: 'range', range: ByteRange }
  | { kind: 'unsatisfiable' }

/**
 * Parses a `Range` header for an object of `size` bytes (RFC 9110 §14.1.2). Only one
 * `bytes=` range is served; anything else (several ranges, other units, nonsense) is
 * answered with the whole object, which the RFC allows a server to do.
 */
export function parseRange (header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: 'none' }
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (match === null) return { kind: 'none' }
  const [, first = '', last = ''] = match
  if (first === '' && last === '') return { kind: 'none' }
  if (first === '') {
    // Suffix range: the last N bytes.
    const length = Number(last)
    if (length === 0 || size === 0) return { kind: 'unsatisfiable' }
    return { kind: 'range', range: { start: Math.max(0, size - length), end: size - 1 } }
  }
  const start = Number(first)
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1)
  if (!Number.isSafeInteger(start) || start >= size) return { kind: 'unsatisfiable' }
  if (last !== '' && Number(last) < start) return { kind: 'none' }
  return { kind: 'range', range: { start, end } }
}
