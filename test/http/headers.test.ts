import t from 'tap'
import { contentDisposition } from '../../src/http/content-disposition.js'
import { parseRange } from '../../src/http/range.js'

t.test('contentDisposition never lets a filename break the header', async (t) => {
  t.equal(contentDisposition('plain.jsonl'), 'attachment; filename="plain.jsonl"; filename*=UTF-8\'\'plain.jsonl')
  t.equal(contentDisposition('a "b" \\ c%.txt'), 'attachment; filename="a _b_ _ c_.txt"; filename*=UTF-8\'\'a%20%22b%22%20%5C%20c%25.txt')
  t.equal(contentDisposition('x\r\nSet-Cookie: y'), 'attachment; filename="x__Set-Cookie: y"; filename*=UTF-8\'\'x%0D%0ASet-Cookie%3A%20y')
  t.equal(contentDisposition('日本\u202e.jsonl'), 'attachment; filename="___.jsonl"; filename*=UTF-8\'\'%E6%97%A5%E6%9C%AC%E2%80%AE.jsonl')
  t.equal(contentDisposition("it's (1)*.txt"), 'attachment; filename="it\'s (1)*.txt"; filename*=UTF-8\'\'it%27s%20%281%29%2A.txt')
})

t.test('parseRange: one bytes range, per RFC 9110', async (t) => {
  t.same(parseRange(undefined, 10), { kind: 'none' })
  t.same(parseRange('bytes=0-0', 10), { kind: 'range', range: { start: 0, end: 0 } })
  t.same(parseRange('bytes=2-', 10), { kind: 'range', range: { start: 2, end: 9 } })
  t.same(parseRange('bytes=-3', 10), { kind: 'range', range: { start: 7, end: 9 } })
  t.same(parseRange('bytes=-30', 10), { kind: 'range', range: { start: 0, end: 9 } })
  t.same(parseRange('bytes=5-500', 10), { kind: 'range', range: { start: 5, end: 9 } })
  t.same(parseRange('bytes=10-', 10), { kind: 'unsatisfiable' })
  t.same(parseRange('bytes=-0', 10), { kind: 'unsatisfiable' })
  t.same(parseRange('bytes=0-', 0), { kind: 'unsatisfiable' })
  t.same(parseRange('bytes=5-2', 10), { kind: 'none' }, 'an invalid range is ignored')
  t.same(parseRange('bytes=0-1,3-4', 10), { kind: 'none' }, 'several ranges: the whole object')
  t.same(parseRange('pages=1-2', 10), { kind: 'none' })
  t.same(parseRange('bytes=-', 10), { kind: 'none' })
})
