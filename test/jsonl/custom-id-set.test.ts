import t from 'tap'
import { CustomIdSet } from '../../src/jsonl/custom-id-set.js'

t.test('the first use records the line, a repeat returns it', async (t) => {
  const ids = new CustomIdSet()
  t.equal(ids.firstLineOrAdd('a', 1), 0)
  t.equal(ids.firstLineOrAdd('b', 2), 0)
  t.equal(ids.firstLineOrAdd('a', 3), 1)
  t.equal(ids.firstLineOrAdd('a', 4), 1, 'a third use still names the first line')
  t.equal(ids.size, 2)
})

t.test('distinct ids stay distinct through growth, repeats are all found', async (t) => {
  const ids = new CustomIdSet()
  const n = 200_000
  let falseRepeats = 0
  for (let i = 0; i < n; i++) if (ids.firstLineOrAdd(`request-${i}`, i + 1) !== 0) falseRepeats++
  t.equal(falseRepeats, 0)
  let wrong = 0
  for (let i = 0; i < n; i++) if (ids.firstLineOrAdd(`request-${i}`, n + i + 1) !== i + 1) wrong++
  t.equal(wrong, 0, 'every repeat names its first line')
  t.equal(ids.size, n)
  t.ok(ids.bytes <= 12 * 2 ** 19, `12 bytes a slot, load ≤ 0.75: ${ids.bytes} bytes for ${n} ids`)
})

t.test('near misses are different ids', async (t) => {
  const ids = new CustomIdSet()
  const long = 'x'.repeat(511)
  const similar = ['', 'a', 'a\u0000', 'ab', 'ab\u0000', 'ba', '\u0000a', long + 'y', long + 'z', 'y' + long, '東京', '東京\u0000', '😀', '\ud83d', '\ude00']
  for (const [i, id] of similar.entries()) t.equal(ids.firstLineOrAdd(id, i + 1), 0, JSON.stringify(id.slice(0, 8)))
  for (const [i, id] of similar.entries()) t.equal(ids.firstLineOrAdd(id, 100), i + 1)
})

t.test('lines past 2^32 - 1 keep their exact number', async (t) => {
  const ids = new CustomIdSet()
  const big = 2 ** 32 + 5
  t.equal(ids.firstLineOrAdd('x', big), 0)
  t.equal(ids.firstLineOrAdd('y', 2 ** 32 - 1), 0)
  t.equal(ids.firstLineOrAdd('x', big + 1), big)
  t.equal(ids.firstLineOrAdd('y', big + 2), 2 ** 32 - 1)
})
