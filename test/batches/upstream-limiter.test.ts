import t from 'tap'
import { loadSignal, UpstreamLimiter } from '../../src/batches/upstream-limiter.js'

t.test('slow start doubles per round trip, never past the ceiling', async (t) => {
  let now = 0
  const l = new UpstreamLimiter(64, { initial: 4, clock: () => now })
  t.equal(l.limit, 4)
  for (let i = 0; i < 4; i++) t.ok(await l.acquire())
  for (let i = 0; i < 4; i++) l.release('ok', 100)
  t.equal(l.limit, 8, 'four successes: four more')
  for (let round = 0; round < 10; round++) {
    const n = l.limit
    for (let i = 0; i < n; i++) await l.acquire()
    now += 100
    for (let i = 0; i < n; i++) l.release('ok', 100)
  }
  t.equal(l.limit, 64, 'capped at the ceiling')
})

t.test('overload: ×0.7 once per round trip, then additive increase', async (t) => {
  let now = 0
  const l = new UpstreamLimiter(100, { initial: 40, clock: () => now })
  for (let i = 0; i < 40; i++) await l.acquire()
  for (let i = 0; i < 10; i++) l.release('overload', 100)
  t.equal(l.limit, 28, 'ten 429s from one burst count once: 40 × 0.7')
  now += 200
  l.release('overload', 100)
  t.equal(l.limit, 19, 'a later one counts again')
  // 19.6 now; +1/limit per success: a round trip of ~20 successes adds one.
  for (let i = 0; i < 19; i++) l.release('ok', 100)
  t.equal(l.limit, 20, 'after a decrease, +1/limit per success: about one per round trip')
  for (let i = 0; i < 21; i++) { await l.acquire(); l.release('ok', 100) }
  t.equal(l.limit, 21)
})

t.test('latency past twice the baseline is overload too', async (t) => {
  let now = 0
  const l = new UpstreamLimiter(100, { initial: 10, clock: () => now })
  await l.acquire(); l.release('ok', 100)
  const before = l.limit
  now += 1000
  await l.acquire(); l.release('ok', 250)
  t.ok(l.limit < before, `${before} → ${l.limit}`)
})

t.test('latency this replica\'s own loop added is not the upstream\'s: no decrease for it', async (t) => {
  let now = 0
  let lag = 0
  const l = new UpstreamLimiter(100, { initial: 10, clock: () => now, localLagMs: () => lag })
  await l.acquire(); l.release('ok', 100)
  const before = l.limit
  now += 1000
  // 250 ms measured, 160 of them spent waiting for the loop: the upstream took 90.
  lag = 160
  await l.acquire(); l.release('ok', 250)
  t.ok(l.limit >= before, `kept growing: ${before} → ${l.limit}`)
  // An answer excused by the lag does not lower the baseline: with the loop late by 95 ms a
  // 100 ms answer would look like 5 ms, and every later 100 ms answer like a queue.
  lag = 95
  now += 1000
  await l.acquire(); l.release('ok', 100)
  lag = 0
  now += 1000
  await l.acquire(); l.release('ok', 100)
  t.ok(l.limit >= before, `a 100 ms answer is still the baseline: ${before} → ${l.limit}`)
  // The same 250 ms with the loop on time is the upstream's own, and is overload.
  now += 1000
  await l.acquire(); l.release('ok', 250)
  t.ok(l.limit < before, `${before} → ${l.limit}`)
})

t.test('a Retry-After pauses every sender until it ends; waiters then go in order', async (t) => {
  const l = new UpstreamLimiter(10, { initial: 10 })
  await l.acquire()
  l.release('overload', 10, Date.now() + 300)
  const started = Date.now()
  const order: number[] = []
  await Promise.all([1, 2, 3].map(async (i) => { await l.acquire(); order.push(i) }))
  t.ok(Date.now() - started >= 280, `nobody sent during the pause (${Date.now() - started} ms)`)
  t.same(order, [1, 2, 3])
  l.close()
})

t.test('an aborted wait takes no permit; a lower ceiling caps the limit at once', async (t) => {
  const l = new UpstreamLimiter(2, { initial: 2 })
  await l.acquire(); await l.acquire()
  const ac = new AbortController()
  const waiting = l.acquire(ac.signal)
  ac.abort()
  t.equal(await waiting, false)
  t.equal(l.inFlight, 2)
  l.setCeiling(1)
  t.equal(l.limit, 1)
  l.release('ok', 10)
  t.equal(l.inFlight, 1)
})

t.test('load signals', async (t) => {
  t.equal(loadSignal({ kind: 'response', status: 200 }), 'ok')
  t.equal(loadSignal({ kind: 'response', status: 400 }), 'ok')
  t.equal(loadSignal({ kind: 'response', status: 429 }), 'overload')
  t.equal(loadSignal({ kind: 'response', status: 503 }), 'overload')
  t.equal(loadSignal({ kind: 'response', status: 500 }), 'neutral')
  t.equal(loadSignal({ kind: 'transport', code: 'headers_timeout' }), 'overload')
  t.equal(loadSignal({ kind: 'transport', code: 'aborted' }), 'neutral')
})
