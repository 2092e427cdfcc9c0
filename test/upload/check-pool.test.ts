import { Buffer } from 'node:buffer'
import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'
import { DEFAULT_BATCH_URLS, type BatchValidatorOptions } from '../../src/jsonl/batch-validator.js'
import { CHECK_IN_FLIGHT_BYTES, CheckPool, checkPoolSize, kSharedSlices, kValidating, kWorkers, SLICE_BYTES, SLICES, type UploadCheck } from '../../src/upload/check-pool.js'
import { inlineCheck } from '../../src/upload/inline-check.js'
import { seededRandom } from '../helpers/seeded-random.js'

/** Issue 12 item 2: the checks of a worker give the very verdicts and hashes of the inline ones. */

const options: BatchValidatorOptions = { maxRequests: 5, maxLineBytes: 300, allowedUrls: DEFAULT_BATCH_URLS, modelPolicy: 'warn' }

const line = (id: string, extra: Record<string, unknown> = {}): string => JSON.stringify({
  custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model: 'm', messages: [{ role: 'user', content: 'hi' }], ...extra }
})

/** Valid and invalid files: every kind of error, the report's caps and the odd model name. */
const FILES: Record<string, Buffer> = {
  valid: Buffer.from(`${line('a')}\n${line('b')}\n${line('c')}\n`),
  empty: Buffer.alloc(0),
  'blank lines and trailing blanks': Buffer.from(`${line('a')}\n\n \t\n${line('b')}\n\n\n`),
  'not json, not an object': Buffer.from(`${line('a')}\nnot json\n[1,2]\n"x"\n`),
  'duplicate ids and a bad url': Buffer.from(`${line('a')}\n${line('a')}\n${line('b').replace('/v1/chat/completions', '/v1/nope')}\n`),
  'invalid UTF-8': Buffer.concat([Buffer.from(`${line('a')}\n{"custom_id":"`), Buffer.from([0xff, 0xfe]), Buffer.from('"}\n')]),
  'a line too large': Buffer.from(`${line('a')}\n${line('b', { pad: 'x'.repeat(400) })}\n${line('c')}\n`),
  'too many requests': Buffer.from(Array.from({ length: 8 }, (_, i) => line(`id-${i}`)).join('\n')),
  'other models, one named __proto__': Buffer.from(`${line('a')}\n${line('b', { model: '__proto__' })}\n${line('c', { model: 'other' })}\n`),
  'messages and stream': Buffer.from(`${line('a', { stream: true })}\n${line('b', { messages: [] })}\n${line('c', { messages: [{ role: 'robot' }] })}\n`)
}

/** The same bytes cut at random places, as a socket cuts them. */
function pieces (bytes: Buffer, random: () => number): Buffer[] {
  const out: Buffer[] = []
  for (let at = 0; at < bytes.length;) {
    const size = 1 + Math.floor(random() * 40)
    out.push(bytes.subarray(at, at + size))
    at += size
  }
  return out
}

async function feed (check: UploadCheck, chunks: Buffer[]): Promise<Awaited<ReturnType<UploadCheck['end']>>> {
  for (const chunk of chunks) await check.write(chunk)
  return await check.end()
}

t.test('pooled and inline checks give identical verdicts, errors and hashes on the same files', async (t) => {
  const pool = new CheckPool({ size: 2 })
  t.teardown(async () => { await pool.close() })
  const random = seededRandom(12)
  for (const [name, bytes] of Object.entries(FILES)) {
    const chunks = pieces(bytes, random)
    const inline = await feed(inlineCheck(options), chunks)
    const pooledCheck = pool.open(options)
    if (pooledCheck === null) throw new Error('the pool has no worker')
    const pooled = await feed(pooledCheck, chunks)
    t.same(pooled, inline, name)
    t.equal(pooled.validation?.valid, name === 'valid' || name.startsWith('other'), `${name}: the verdict expected`)
    if (name.startsWith('other')) t.ok(Object.hasOwn(pooled.validation?.models ?? {}, '__proto__'), '__proto__ stays an own key across threads')
  }
  // Not validated (the purpose is known not to be batch): only the hash.
  const hashOnly = pool.open(null)
  if (hashOnly === null) throw new Error('the pool has no worker')
  t.same(await feed(hashOnly, [FILES.valid as Buffer]), await feed(inlineCheck(null), [FILES.valid as Buffer]))
  t.same(await pool.sessions(), [0, 0], 'finished checks leave nothing in the workers')
})

t.test('a large file in large chunks: identical, and the live error count arrives while the file streams', async (t) => {
  const pool = new CheckPool({ size: 1 })
  t.teardown(async () => { await pool.close() })
  const lines = Array.from({ length: 20_000 }, (_, i) => line(`id-${i}`))
  lines[3] = 'not json'
  const bytes = Buffer.from(lines.join('\n'))
  const chunks = Array.from({ length: Math.ceil(bytes.length / 65536) }, (_, i) => bytes.subarray(i * 65536, (i + 1) * 65536))
  const big = { ...options, maxRequests: 50_000 }
  const check = pool.open(big)
  if (check === null) throw new Error('the pool has no worker')
  let seenAt = -1
  for (const [i, chunk] of chunks.entries()) {
    await check.write(chunk)
    if (seenAt < 0 && check.errorCount > 0) seenAt = i
  }
  t.ok(seenAt >= 0 && seenAt < chunks.length - 1, `the error was known after chunk ${seenAt} of ${chunks.length}, before the end`)
  t.same(await check.end(), await feed(inlineCheck(big), chunks))
})

t.test('backpressure: an upload has at most CHECK_IN_FLIGHT_BYTES with its worker, then waits', async (t) => {
  const pool = new CheckPool({ size: 1 })
  t.teardown(async () => { await pool.close() })
  const check = pool.open(null)
  if (check === null) throw new Error('the pool has no worker')
  const chunk = Buffer.alloc(64 * 1024, 'x')
  let accepted = 0
  // Nothing comes back from the worker while this loop runs (its answers are events).
  let wait: Promise<void> | undefined
  while ((wait = check.write(chunk)) === undefined) accepted += chunk.length
  t.equal(accepted, CHECK_IN_FLIGHT_BYTES, 'every slice filled and posted; the chunk that needs one more waits')
  t.equal(CHECK_IN_FLIGHT_BYTES, 8 * SLICE_BYTES)
  await wait
  accepted += chunk.length
  const more = Buffer.alloc(3 * 1024 * 1024 + 5, 'y')
  await check.write(more)
  const { sha256 } = await check.end()
  const expected = inlineCheck(null)
  for (let i = 0; i < accepted / chunk.length; i++) expected.write(chunk)
  expected.write(more)
  t.equal(sha256, (await expected.end()).sha256, 'every byte was hashed once, in order')
})

t.test('closing a check mid-file (an abort) frees it in the worker at once', async (t) => {
  const pool = new CheckPool({ size: 2 })
  t.teardown(async () => { await pool.close() })
  const checks = [pool.open(options), pool.open(options), pool.open(options)]
  for (const check of checks) await check?.write(Buffer.from(`${line('a')}\n${line('b')}`))
  t.same(await pool.sessions(), [3, 3], 'each validated upload is checked by both workers: one validates, one hashes')
  t.same(pool[kValidating], [2, 1], 'the validations alternate between the workers')
  const fourth = pool.open(options)
  t.same(pool[kValidating], [2, 2])
  fourth?.close()
  const hashOnly = pool.open(null)
  t.same((await pool.sessions()).sort(), [3, 4], 'an upload that is only hashed takes one worker')
  hashOnly?.close()
  for (const check of checks) check?.close()
  checks[0]?.close()
  t.same(await pool.sessions(), [0, 0])
})

t.test('two workers on one upload: the validator\'s verdict and the hasher\'s hash, each slice refilled once both are done with it', async (t) => {
  const pool = new CheckPool({ size: 2 })
  t.teardown(async () => { await pool.close() })
  const lines = Array.from({ length: 60_000 }, (_, i) => line(`id-${i}`))
  lines[20_000] = line('id-7')
  const bytes = Buffer.from(lines.join('\n'))
  t.ok(bytes.length > 2 * CHECK_IN_FLIGHT_BYTES, 'more bytes than the slices hold: every slice is reused')
  const chunks = Array.from({ length: Math.ceil(bytes.length / 65536) }, (_, i) => bytes.subarray(i * 65536, (i + 1) * 65536))
  const big = { ...options, maxRequests: 100_000 }
  const check = pool.open(big)
  if (check === null) throw new Error('the pool has no worker')
  t.same(await pool.sessions(), [1, 1])
  const pooled = await feed(check, chunks)
  t.same(pooled, await feed(inlineCheck(big), chunks))
  t.strictSame(pooled.validation?.errors.map((e) => [e.code, e.line]), [['duplicate_custom_id', 20_001]])
  t.same(await pool.sessions(), [0, 0])
})

t.test('shared slices are reused across uploads, aborted ones included, once both workers hand them back', async (t) => {
  const pool = new CheckPool({ size: 2 })
  t.teardown(async () => { await pool.close() })
  const bytes = Buffer.from(Array.from({ length: 40_000 }, (_, i) => line(`id-${i}`)).join('\n'))
  t.ok(bytes.length > CHECK_IN_FLIGHT_BYTES)
  const big = { ...options, maxRequests: 100_000 }
  // An abort with every slice still with the workers: none is reused before both acks.
  const aborted = pool.open(big)
  if (aborted === null) throw new Error('the pool has no worker')
  let wait: Promise<void> | undefined
  for (let at = 0; wait === undefined; at += 65536) wait = aborted.write(bytes.subarray(at, at + 65536))
  wait.catch(() => {})
  aborted.close()
  t.same(pool[kSharedSlices], { spare: 0, draining: 1 }, 'all eight are out: the closed check waits for them')
  // The workers answer in order: once they have answered this, every ack has arrived.
  await pool.sessions()
  t.same(pool[kSharedSlices], { spare: SLICES, draining: 0 }, 'back from both workers, kept for the next upload')
  for (let round = 0; round < 3; round++) {
    const check = pool.open(big)
    if (check === null) throw new Error('the pool has no worker')
    const result = await feed(check, [bytes])
    t.equal(result.validation?.valid, true)
    t.same(pool[kSharedSlices], { spare: SLICES, draining: 0 }, `upload ${round + 1} took the kept slices and gave them back: none allocated`)
  }
})

t.test('the hashing worker dies: the upload fails with a 500 and the validating worker lets go of it', async (t) => {
  const pool = new CheckPool({ size: 2 })
  t.teardown(async () => { await pool.close() })
  const check = pool.open(options)
  if (check === null) throw new Error('the pool has no worker')
  await check.write(Buffer.from(`${line('a')}\n`))
  t.same(await pool.sessions(), [1, 1])
  // The first check's validator goes to the first worker, its hash to the second.
  const hasher = pool[kWorkers][1]
  if (hasher === undefined) throw new Error('no second worker')
  await hasher.terminate()
  await t.rejects(check.end(), { statusCode: 500, code: 'internal_error' })
  t.same(await pool.sessions(), [0, 0], 'the validating half is closed; the new worker holds nothing')
})

t.test('a worker that dies fails its checks with a 500 and is replaced; the next check succeeds', async (t) => {
  const exits: Error[] = []
  const pool = new CheckPool({ size: 1, onWorkerExit: (error) => { exits.push(error) } })
  t.teardown(async () => { await pool.close() })
  const check = pool.open(options)
  if (check === null) throw new Error('the pool has no worker')
  await check.write(Buffer.from(`${line('a')}\n`))
  const [worker] = pool[kWorkers]
  if (worker === undefined) throw new Error('no worker')
  // Its answer proves it came up: a worker that never did is not replaced.
  await pool.sessions()
  await worker.terminate()
  await t.rejects(check.end(), { statusCode: 500, code: 'internal_error' })
  t.equal(exits.length, 1, 'the exit is reported')
  t.rejects(Promise.resolve(check.write(Buffer.from('x'))), { code: 'internal_error' }, 'a dead check refuses more bytes')
  t.equal(pool[kWorkers].length, 1, 'a new worker took its place')
  t.not(pool[kWorkers][0], worker)
  const next = pool.open(options)
  if (next === null) throw new Error('the pool has no worker')
  t.same(await feed(next, [FILES.valid as Buffer]), await feed(inlineCheck(options), [FILES.valid as Buffer]))
})

t.test('the pool size: validated, one per core by default, 0 for none', async (t) => {
  t.throws(() => new CheckPool({ size: 0 }), RangeError)
  t.throws(() => new CheckPool({ size: 1.5 }), RangeError)
  for (const bad of ['-1', '257', '1.5', 'two']) {
    t.throws(() => loadConfig({ UPLOAD_WORKER_THREADS: bad }), ConfigError, bad)
  }
  t.equal(loadConfig({ UPLOAD_WORKER_THREADS: '0' }).UPLOAD_WORKER_THREADS, 0)
  t.equal(loadConfig({}).UPLOAD_WORKER_THREADS, undefined)
  const { availableParallelism } = await import('node:os')
  t.equal(checkPoolSize(undefined), availableParallelism())
  t.equal(checkPoolSize(0), 0)
  t.equal(checkPoolSize(3), 3)
})
