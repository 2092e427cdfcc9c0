import t from 'tap'
import { decodeTime } from 'ulid'
import { isBatchId, isFileId, newBatchId, nextFileId, newUploadId, objectKeyFor, ulid } from '../src/ids.js'

const T = Date.UTC(2026, 0, 1)
const timeOf = (id: string): number => decodeTime(id.slice('file-'.length))

t.test('nextFileId is always greater than the last id, whatever the clock says', async (t) => {
  const first = nextFileId(undefined, T)
  t.ok(isFileId(first))
  t.equal(timeOf(first), T, 'no last id: a ULID of now')
  const later = nextFileId(first, T + 5)
  t.equal(timeOf(later), T + 5, 'the clock moved on: a ULID of now')
  t.ok(later > first)
  const sameMs = nextFileId(later, T + 5)
  t.ok(sameMs > later, 'same millisecond: the last id plus one')
  t.equal(timeOf(sameMs), T + 5)
  const behind = nextFileId(sameMs, T - 60_000)
  t.ok(behind > sameMs, 'a clock behind the last id (another replica, a step back): still greater')
  t.equal(timeOf(behind), T + 5, 'and it keeps the last id\'s time')
  t.equal(nextFileId(`file-${'0'.repeat(25)}Z`, 0), 'file-00000000000000000000000010', 'the increment carries')
  t.throws(() => nextFileId('file-7ZZZZZZZZZZZZZZZZZZZZZZZZZ', T), RangeError)
  t.equal(timeOf(nextFileId('not-a-file-id', T)), T, 'a row with a foreign id is not a cursor to follow')
})

t.test('objects are keyed by an upload id under the files/ prefix', async (t) => {
  const upload = newUploadId()
  t.match(upload, /^upload-[0-9A-HJKMNP-TV-Z]{26}$/)
  t.not(newUploadId(), upload)
  t.equal(objectKeyFor('project-a', upload), `files/project-a/${upload}`)
})

t.test('batch ids: batch_ + a ULID of now, in creation order within a millisecond', async (t) => {
  const ids = Array.from({ length: 50 }, () => newBatchId(T))
  for (const id of ids) t.ok(isBatchId(id), id)
  t.equal(decodeTime(ids[0]?.slice('batch_'.length) ?? ''), T)
  t.strictSame([...ids].sort(), ids, 'same millisecond: still increasing')
  t.equal(new Set(ids).size, ids.length)
  t.notOk(isBatchId('batch_abc'))
  t.notOk(isBatchId(nextFileId(undefined, T)))
})

t.test('ulid: pooled random bytes give valid, distinct ULIDs of the time asked, every character in use', async (t) => {
  const now = Date.UTC(2026, 11, 3)
  const ids = Array.from({ length: 20_000 }, () => ulid(now))
  t.ok(ids.every((id) => /^[0-9A-HJKMNP-TV-Z]{26}$/.test(id)), 'Crockford base32, 26 characters')
  t.ok(ids.every((id) => decodeTime(id) === now), 'the time part is the time asked')
  t.equal(new Set(ids).size, ids.length, 'no two alike (past the 4 KiB pool many times over)')
  // 20,000 × 16 random characters: each of the 32 about 10,000 times; a biased or stuck
  // generator (a pool never refilled) would show here.
  const counts = new Map<string, number>()
  for (const id of ids) for (const c of id.slice(10)) counts.set(c, (counts.get(c) ?? 0) + 1)
  t.equal(counts.size, 32)
  t.ok([...counts.values()].every((n) => n > 9000 && n < 11_000), `uniform: ${Math.min(...counts.values())}…${Math.max(...counts.values())}`)
})
