import crypto, { createHash } from 'node:crypto'
import { syncBuiltinESMExports } from 'node:module'
import t, { type Test } from 'tap'
import { createApiKeyTable } from '../../src/api-keys.js'
import { KEY_A, startServer } from '../helpers/app.js'
import { send } from '../helpers/multipart.js'

/**
 * The design, documented: a presented key is hashed (sha256) and the digest looked up in
 * a Map of digests; the raw key is never compared with a stored key, so how long a
 * refusal takes cannot tell how much of a key was right. The metrics token is compared
 * as digests with timingSafeEqual. These tests watch the calls into node:crypto (its
 * ESM exports are live bindings: syncBuiltinESMExports makes the importers see a spy).
 */
function spyOnCrypto (t: Test): { digests: Array<[string, string]>, safeCompares: () => number } {
  const originalCreateHash = crypto.createHash
  const originalHash = crypto.hash
  const originalEqual = crypto.timingSafeEqual
  const digests: Array<[string, string]> = []
  let safeCompares = 0
  crypto.createHash = ((algorithm: string, options?: crypto.HashOptions) => {
    const hash = originalCreateHash(algorithm, options)
    const update = hash.update.bind(hash)
    hash.update = ((data: crypto.BinaryLike) => { digests.push([algorithm, String(data)]); return update(data) }) as typeof hash.update
    return hash
  }) as typeof crypto.createHash
  crypto.hash = ((algorithm: string, data: crypto.BinaryLike, outputEncoding?: crypto.BinaryToTextEncoding) => {
    digests.push([algorithm, String(data)])
    return originalHash(algorithm, data, outputEncoding)
  }) as typeof crypto.hash
  crypto.timingSafeEqual = ((a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => { safeCompares++; return originalEqual(a, b) }) as typeof crypto.timingSafeEqual
  syncBuiltinESMExports()
  t.teardown(() => {
    crypto.createHash = originalCreateHash
    crypto.hash = originalHash
    crypto.timingSafeEqual = originalEqual
    syncBuiltinESMExports()
  })
  return { digests, safeCompares: () => safeCompares }
}

const REAL = 'sk-real-key-0123456789abcdef'
const nearMisses = [
  REAL.slice(0, -1) + 'X', // all but the last character right
  'X' + REAL.slice(1), // only the first wrong
  REAL.slice(0, -1), // a prefix
  REAL + 'f', // an extension
  REAL.toUpperCase(),
  ` ${REAL}`,
  REAL.normalize('NFD').replace('e', 'e\u0301')
]

t.test('lookup goes through the sha256 digest of the presented key, once, and nothing else', async (t) => {
  const table = createApiKeyTable([[REAL, 'p']])
  const spy = spyOnCrypto(t)
  for (const key of [REAL, ...nearMisses]) {
    spy.digests.length = 0
    t.equal(table.lookup(key)?.project, key === REAL ? 'p' : undefined, JSON.stringify(key))
    t.same(spy.digests, [['sha256', key]], `${JSON.stringify(key)}: one sha256 of the key, no other use of it`)
  }
  // The keyId names the key to the rate limiter and in its counters: a digest, not the key.
  t.same(table.lookup(REAL), { project: 'p', keyId: createHash('sha256').update(REAL).digest('base64url') })
})

t.test('over HTTP: the key is digested once, for lookup and the rate-limit identity alike; the metrics token via timingSafeEqual', async (t) => {
  const server = await startServer(t, { METRICS_TOKEN: 'metrics-token-0123456789' })
  const spy = spyOnCrypto(t)
  const wrong = KEY_A.slice(0, -1) + 'X'
  t.equal((await send(`${server.url}/v1/files`, 'GET', { authorization: `Bearer ${wrong}` })).status, 401)
  t.same(spy.digests.filter(([, data]) => data === wrong), [['sha256', wrong]], 'a wrong key: digested once, then refused')
  spy.digests.length = 0
  t.equal((await send(`${server.url}/v1/files`, 'GET', { authorization: `Bearer ${KEY_A}` })).status, 200)
  t.same(spy.digests.filter(([, data]) => data === KEY_A), [['sha256', KEY_A]], 'a right key: one digest, both the lookup and the keyId the rate limiter counts by')

  const before = spy.safeCompares()
  t.equal((await send(`${server.url}/metrics`, 'GET', { authorization: 'Bearer metrics-token-012345678X' })).status, 401)
  t.equal((await send(`${server.url}/metrics`, 'GET', { authorization: 'Bearer metrics-token-0123456789' })).status, 200)
  t.equal(spy.safeCompares() - before, 2, 'each token check is one constant-time comparison of digests')
})

/** Median nanoseconds per call of `fn` over `calls` calls. */
function timePerCall (fn: () => unknown, calls: number): number {
  const start = process.hrtime.bigint()
  for (let i = 0; i < calls; i++) fn()
  return Number(process.hrtime.bigint() - start) / calls
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN

t.test('timing: a key wrong in its last character is refused as fast as one wrong in its first', async (t) => {
  // Documentation more than detection: a prefix comparison would differ by nanoseconds,
  // under this noise. The bound is wide so a busy CI machine cannot fail it; the design
  // test above is what guarantees the property.
  const table = createApiKeyTable([[REAL, 'p'], ['sk-other-key-0123456789abcdef', 'q']])
  const late = REAL.slice(0, -1) + 'X'
  const early = 'X' + REAL.slice(1)
  const lateTimes: number[] = []
  const earlyTimes: number[] = []
  for (let round = 0; round < 21; round++) {
    // Interleaved, so drifts of the machine hit both alike.
    lateTimes.push(timePerCall(() => table.lookup(late), 2000))
    earlyTimes.push(timePerCall(() => table.lookup(early), 2000))
  }
  const ratio = median(lateTimes) / median(earlyTimes)
  t.comment(`median ns per lookup: wrong last char ${median(lateTimes).toFixed(0)}, wrong first char ${median(earlyTimes).toFixed(0)}, ratio ${ratio.toFixed(3)}`)
  t.ok(ratio > 0.5 && ratio < 2, `ratio ${ratio.toFixed(3)} within [0.5, 2]`)
})
