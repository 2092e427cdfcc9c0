import type { IncomingHttpHeaders } from 'node:http'
import fresh from 'fresh'

/** What identifies one representation: a strong ETag and its Last-Modified in whole seconds. */
export interface Validators {
  /** A strong entity tag, quotes included: `"abc"`. */
  etag: string
  /** Unix milliseconds, a whole second (HTTP dates have no finer precision). */
  lastModified: number
}

export type Precondition =
  | { kind: 'proceed' }
  | { kind: 'not-modified' }
  | { kind: 'failed', header: 'if-match' | 'if-unmodified-since' }

/**
 * RFC 9110 §13.2.2, in its order, for a GET or HEAD of a representation that exists:
 * If-Match, else If-Unmodified-Since (412 when false); then If-None-Match, else
 * If-Modified-Since (304 when the client's copy is current). The last pair is `fresh`'s.
 */
export function evaluatePreconditions (headers: IncomingHttpHeaders, validators: Validators): Precondition {
  const ifMatch = headers['if-match']
  if (ifMatch !== undefined) {
    if (!ifMatchHolds(ifMatch, validators.etag)) return { kind: 'failed', header: 'if-match' }
  } else {
    const since = parseHttpDate(headers['if-unmodified-since'])
    if (since !== null && validators.lastModified > since) return { kind: 'failed', header: 'if-unmodified-since' }
  }
  // Only the two conditional fields: fresh also answers "stale" to `Cache-Control:
  // no-cache`, a directive for caches on the way; the origin still validates (RFC 9111 §5.2.1.4).
  const conditional = { 'if-none-match': headers['if-none-match'], 'if-modified-since': headers['if-modified-since'] }
  const current = { etag: validators.etag, 'last-modified': new Date(validators.lastModified).toUTCString() }
  return { kind: fresh(conditional, current) ? 'not-modified' : 'proceed' }
}

/**
 * RFC 9110 §13.1.5: whether a Range may be honoured. True only for the same strong
 * entity tag (a weak one never matches) or exactly the Last-Modified date; anything
 * else, unparseable values included, means the client's partial copy is not ours.
 * Our representations never change once stored, so Last-Modified is a strong validator.
 */
export function ifRangeHolds (ifRange: string | undefined, validators: Validators): boolean {
  if (ifRange === undefined) return true
  const value = ifRange.trim()
  if (value.startsWith('"') || value.startsWith('W/')) return value === validators.etag
  return parseHttpDate(value) === validators.lastModified
}

/** RFC 9110 §13.1.1: `*`, or one of the listed tags equal to ours by strong comparison. */
function ifMatchHolds (header: string, etag: string): boolean {
  if (header.trim() === '*') return true
  return entityTags(header).some((tag) => tag === etag)
}

const ENTITY_TAG = /\s*((?:W\/)?"[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)/y

/** The entity tags of a list (`"a", W/"b"`); a malformed list matches nothing. */
export function entityTags (header: string): string[] {
  const tags: string[] = []
  ENTITY_TAG.lastIndex = 0
  while (ENTITY_TAG.lastIndex < header.length) {
    const match = ENTITY_TAG.exec(header)
    if (match === null) return []
    tags.push(match[1] ?? '')
  }
  return tags
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const IMF_FIXDATE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/
const RFC_850 = /^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\d{2})-([A-Z][a-z]{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/
const ASCTIME = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/

/** Day, month name, full year, hour, minute, second of one of the three forms, or null. */
function dateFields (text: string): [string, string, number, string, string, string] | null {
  let m = IMF_FIXDATE.exec(text)
  if (m !== null) return [m[1] ?? '', m[2] ?? '', Number(m[3]), m[4] ?? '', m[5] ?? '', m[6] ?? '']
  m = RFC_850.exec(text)
  if (m !== null) {
    // A two-digit year more than 50 years ahead is in the past century (RFC 9110 §5.6.7).
    const thisYear = new Date().getUTCFullYear()
    const year = Math.floor(thisYear / 100) * 100 + Number(m[3])
    return [m[1] ?? '', m[2] ?? '', year > thisYear + 50 ? year - 100 : year, m[4] ?? '', m[5] ?? '', m[6] ?? '']
  }
  m = ASCTIME.exec(text)
  if (m !== null) return [(m[2] ?? '').trim(), m[1] ?? '', Number(m[6]), m[3] ?? '', m[4] ?? '', m[5] ?? '']
  return null
}

/**
 * An HTTP-date (RFC 9110 §5.6.7: IMF-fixdate and the two obsolete forms a recipient
 * must accept) as Unix milliseconds, or null. Stricter than Date.parse, which takes
 * strings such as "2026" for dates and would turn noise into a condition.
 */
export function parseHttpDate (value: string | undefined): number | null {
  const fields = value === undefined ? null : dateFields(value.trim())
  if (fields === null) return null
  const [day, hour, minute, second] = [fields[0], fields[3], fields[4], fields[5]].map(Number) as [number, number, number, number]
  const month = MONTHS.indexOf(fields[1])
  if (month === -1 || hour > 23 || minute > 59 || second > 59) return null
  const time = Date.UTC(fields[2], month, day, hour, minute, second)
  // Date.UTC rolls "31 Feb" over into March; such a date is not one.
  return new Date(time).getUTCDate() === day ? time : null
}
