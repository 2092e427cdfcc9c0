import t from 'tap'
import { BatchValidator, DEFAULT_BATCH_URLS, kTrackedIds, type BatchValidatorOptions } from '../../src/jsonl/batch-validator.js'
import { CustomIdSet, customIdSetMaxBytes } from '../../src/jsonl/custom-id-set.js'

/** Issue #9 item 7: the custom_id set is bounded by BATCH_MAX_REQUESTS, whatever the file. */

const OPTIONS: BatchValidatorOptions = { maxRequests: 1000, maxLineBytes: 1024 * 1024, allowedUrls: DEFAULT_BATCH_URLS, modelPolicy: 'warn' }
const line = (id: string, model = 'm'): string =>
  JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model, messages: [{ role: 'user', content: 'hi' }] } }) + '\n'

/** Lines in 64 KiB writes, as multipart hands them over. */
function feed (validator: BatchValidator, lines: Iterable<string>): void {
  let pending = ''
  for (const l of lines) {
    pending += l
    if (pending.length >= 65536) {
      validator.write(Buffer.from(pending))
      pending = ''
    }
  }
  if (pending !== '') validator.write(Buffer.from(pending))
}

function * distinct (from: number, to: number): Generator<string> {
  for (let i = from; i < to; i++) yield line(`request-${i}`)
}

t.test('firstLine looks up without recording: the set does not grow', async (t) => {
  const ids = new CustomIdSet()
  for (let i = 0; i < 100; i++) ids.firstLineOrAdd(`id-${i}`, i + 1)
  const bytes = ids.bytes
  let found = 0
  for (let i = 100; i < 100_000; i++) if (ids.firstLine(`id-${i}`) !== 0) found++
  t.equal(found, 0, 'no new id is found')
  t.equal(ids.size, 100)
  t.equal(ids.bytes, bytes, 'not one byte more after 99,900 lookups of new ids')
  t.equal(ids.firstLine('id-42'), 43, 'a recorded id is found')
  t.equal(ids.firstLine('id-100'), 0, 'a looked-up id was not recorded')
})

t.test('past BATCH_MAX_REQUESTS the set stops at the limit, in size and in bytes', async (t) => {
  // One validator throughout: each set draws its own key, so two sets' tables differ.
  const past = new BatchValidator(OPTIONS)
  feed(past, distinct(0, OPTIONS.maxRequests))
  const atLimit = past[kTrackedIds]
  t.equal(atLimit.size, 1000)
  feed(past, distinct(OPTIONS.maxRequests, 200_000))
  t.strictSame(past[kTrackedIds], atLimit, '199,000 more distinct ids cost not one byte more')
  t.ok(atLimit.bytes <= customIdSetMaxBytes(1000), `${atLimit.bytes} bytes within the documented bound of ${customIdSetMaxBytes(1000)}`)
  const result = past.end()
  t.equal(result.valid, false)
  t.equal(result.requests, 200_000)
  t.strictSame(result.errors.map((e) => [e.code, e.line]), [['too_many_tasks', 1001]])
})

t.test('past the limit a line repeating a recorded id is still named; repeats among later ids are not tracked', async (t) => {
  const validator = new BatchValidator({ ...OPTIONS, maxRequests: 3 })
  feed(validator, [line('a'), line('b'), line('c'), line('d'), line('d'), line('b')])
  const result = validator.end()
  t.strictSame(result.errors.map((e) => [e.code, e.line, e.param]), [
    ['too_many_tasks', 4, null],
    ['duplicate_custom_id', 6, 'custom_id']
  ], 'line 6 repeats line 2; line 5 repeats line 4, past the limit, and the file is refused anyway')
  t.match(result.errors[1]?.message, /already used on line 2/)
  t.equal(validator[kTrackedIds].size, 3)
})

t.test('the per-model counts are capped in names and in name length; verdicts and warnings stay exact', async (t) => {
  const validator = new BatchValidator({ ...OPTIONS, maxRequests: 10_000 })
  const lines = [line('first', 'm')]
  for (let i = 0; i < 500; i++) lines.push(line(`x-${i}`, `model-${i}-${'z'.repeat(1000)}`))
  lines.push(line('again', `model-0-${'z'.repeat(1000)}`))
  feed(validator, lines)
  const result = validator.end()
  t.equal(result.valid, true)
  t.equal(result.warningCount, 501)
  const names = Object.keys(result.models)
  t.equal(names.length, 101, 'the first model and 100 others')
  t.equal(result.models.m, 1)
  t.equal(result.models[`model-0-${'z'.repeat(248)}…`], 2, 'counted under its first 256 characters')
  t.ok(names.every((name) => name.length <= 257))
})
