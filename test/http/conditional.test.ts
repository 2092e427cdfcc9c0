import t from 'tap'
import { entityTags, evaluatePreconditions, ifRangeHolds, parseHttpDate } from '../../src/http/conditional.js'

const v = { etag: '"abc"', lastModified: Date.UTC(2026, 0, 2, 3, 4, 5) }
const LM = 'Fri, 02 Jan 2026 03:04:05 GMT'

t.test('parseHttpDate: the three RFC 9110 forms, nothing else', async (t) => {
  t.equal(parseHttpDate(LM), v.lastModified)
  t.equal(parseHttpDate('Friday, 02-Jan-26 03:04:05 GMT'), v.lastModified)
  t.equal(parseHttpDate('Fri Jan  2 03:04:05 2026'), v.lastModified)
  t.equal(parseHttpDate('2026'), null)
  t.equal(parseHttpDate('Sat, 31 Feb 2026 00:00:00 GMT'), null)
  t.equal(parseHttpDate(undefined), null)
})

t.test('entityTags: lists, weak tags, malformed lists', async (t) => {
  t.same(entityTags('"a", W/"b" ,"c"'), ['"a"', 'W/"b"', '"c"'])
  t.same(entityTags('"a", b'), [])
})

t.test('ifRangeHolds: strong ETag or the exact date', async (t) => {
  t.equal(ifRangeHolds(undefined, v), true)
  t.equal(ifRangeHolds('"abc"', v), true)
  t.equal(ifRangeHolds('W/"abc"', v), false, 'a weak tag never matches')
  t.equal(ifRangeHolds('"other"', v), false)
  t.equal(ifRangeHolds(LM, v), true)
  t.equal(ifRangeHolds('Fri, 02 Jan 2026 03:04:06 GMT', v), false, 'a later date is not an exact match')
  t.equal(ifRangeHolds('garbage', v), false)
})

t.test('evaluatePreconditions in RFC 9110 §13.2.2 order', async (t) => {
  const e = (h: Record<string, string>) => evaluatePreconditions(h, v)
  t.same(e({}), { kind: 'proceed' })
  t.same(e({ 'if-none-match': '"x", W/"abc"' }), { kind: 'not-modified' }, 'weak comparison in a list')
  t.same(e({ 'if-none-match': '*' }), { kind: 'not-modified' })
  t.same(e({ 'if-none-match': '"x"', 'if-modified-since': LM }), { kind: 'proceed' }, 'If-Modified-Since ignored with If-None-Match')
  t.same(e({ 'if-modified-since': LM }), { kind: 'not-modified' })
  t.same(e({ 'if-modified-since': 'Fri, 02 Jan 2026 03:04:04 GMT' }), { kind: 'proceed' })
  t.same(e({ 'if-none-match': '"abc"', 'cache-control': 'no-cache' }), { kind: 'not-modified' }, 'the origin validates whatever caches are told')
  t.same(e({ 'if-match': 'W/"abc"' }), { kind: 'failed', header: 'if-match' }, 'strong comparison')
  t.same(e({ 'if-match': '"x", "abc"' }), { kind: 'proceed' })
  t.same(e({ 'if-match': '*', 'if-unmodified-since': 'Thu, 01 Jan 1970 00:00:00 GMT' }), { kind: 'proceed' }, 'If-Unmodified-Since ignored with If-Match')
  t.same(e({ 'if-unmodified-since': 'Fri, 02 Jan 2026 03:04:04 GMT' }), { kind: 'failed', header: 'if-unmodified-since' })
  t.same(e({ 'if-unmodified-since': LM }), { kind: 'proceed' })
  t.same(e({ 'if-match': '"x"', 'if-none-match': '"abc"' }), { kind: 'failed', header: 'if-match' }, 'If-Match first')
})
