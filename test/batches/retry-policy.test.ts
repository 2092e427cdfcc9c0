import t from 'tap'
import { admitRetry, backoffDelay, decide, newBudget, parseRetryAfter, recordSuccess, RetryBudgets } from '../../src/batches/retry-policy.js'
import type { BudgetOptions, Random } from '../../src/batches/retry-policy.js'
import type { UpstreamOutcome } from '../../src/batches/upstream-client.js'
import { seededRandom } from '../helpers/seeded-random.js'

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0)
const HOUR = 3_600_000
const half: Random = () => 0.5

function response (status: number, retryAfter: string | null = null): UpstreamOutcome {
  return { kind: 'response', status, requestId: 'req_1', retryAfter, body: {}, bodyIsJson: true }
}
const base = { attempt: 0, now: NOW, deadline: NOW + HOUR, random: half, backoff: { baseMs: 1_000, capMs: 30_000 } }

t.test('Retry-After as seconds and as an HTTP date', async (t) => {
  t.equal(parseRetryAfter('7', NOW), NOW + 7_000)
  t.equal(parseRetryAfter(' 0 ', NOW), NOW)
  t.equal(parseRetryAfter('Thu, 01 Jan 2026 12:00:30 GMT', NOW), NOW + 30_000)
  t.equal(parseRetryAfter('Thu, 01 Jan 2026 11:00:00 GMT', NOW), NOW, 'a date in the past is now')
  t.equal(parseRetryAfter(null, NOW), null)
  t.equal(parseRetryAfter('1.5', NOW), null, 'not delay-seconds')
  t.equal(parseRetryAfter('-3', NOW), null)
  t.equal(parseRetryAfter('soon', NOW), null)

  t.same(decide({ ...base, outcome: response(429, '7') }), { kind: 'retry', at: NOW + 7_000, reason: 'status 429 with Retry-After' })
  t.same(decide({ ...base, outcome: response(429, 'Thu, 01 Jan 2026 12:01:00 GMT') }), { kind: 'retry', at: NOW + 60_000, reason: 'status 429 with Retry-After' })
  t.same(decide({ ...base, outcome: response(503, '2') }), { kind: 'retry', at: NOW + 2_000, reason: 'status 503 with Retry-After' })
  t.same(decide({ ...base, outcome: response(429) }), { kind: 'retry', at: NOW + 500, reason: 'status 429' }, 'absent: backoff')
  t.same(decide({ ...base, outcome: response(429, 'garbage') }), { kind: 'retry', at: NOW + 500, reason: 'status 429' }, 'unreadable: backoff')
})

t.test('each outcome is classified', async (t) => {
  t.same(decide({ ...base, outcome: response(200) }), { kind: 'success' })
  t.same(decide({ ...base, outcome: response(201) }), { kind: 'success' })
  for (const status of [408, 500, 502, 503, 504]) {
    t.same(decide({ ...base, attempt: 2, outcome: response(status) }), { kind: 'retry', at: NOW + 2_000, reason: `status ${status}` }, `${status}`)
  }
  for (const status of [400, 401, 403, 404, 409, 413, 422]) {
    t.same(decide({ ...base, outcome: response(status) }), { kind: 'final', reason: `status ${status}` }, `${status}`)
  }
  for (const code of ['connect_refused', 'connect_timeout', 'headers_timeout', 'body_timeout', 'connection_reset', 'transport_error'] as const) {
    t.same(decide({ ...base, outcome: { kind: 'transport', code, message: 'x' } }), { kind: 'retry', at: NOW + 500, reason: code }, code)
  }
  t.same(decide({ ...base, outcome: { kind: 'transport', code: 'response_too_large', message: 'answer exceeds 10 bytes' } }), { kind: 'final', reason: 'answer exceeds 10 bytes' })
  t.same(decide({ ...base, outcome: { kind: 'transport', code: 'aborted', message: 'x' } }), { kind: 'abandon' })
})

t.test('exponential backoff with full jitter, capped', async (t) => {
  const options = { baseMs: 1_000, capMs: 30_000 }
  t.same([0, 1, 2, 3, 4, 5, 6, 60].map((a) => backoffDelay(a, () => 0.999999, options)),
    [999, 1_999, 3_999, 7_999, 15_999, 29_999, 29_999, 29_999], 'the ceiling doubles up to the cap')
  t.equal(backoffDelay(3, () => 0, options), 0, 'full jitter reaches zero')
  const random = seededRandom(42)
  for (let attempt = 0; attempt < 8; attempt++) {
    const ceiling = Math.min(30_000, 1_000 * 2 ** attempt)
    const samples = Array.from({ length: 2_000 }, () => backoffDelay(attempt, random, options))
    t.ok(samples.every((d) => d >= 0 && d < ceiling), `attempt ${attempt}: every delay in [0, ${ceiling})`)
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length
    t.ok(Math.abs(mean - ceiling / 2) < ceiling * 0.05, `attempt ${attempt}: mean ${Math.round(mean)} ≈ ${ceiling / 2}`)
  }
})

t.test('a retry past the deadline gives up with batch_expired', async (t) => {
  t.same(decide({ ...base, deadline: NOW + 6_999, outcome: response(429, '7') }),
    { kind: 'give_up', code: 'batch_expired', reason: 'status 429 with Retry-After; the retry would pass the batch\'s deadline' })
  t.same(decide({ ...base, deadline: NOW + 7_000, outcome: response(429, '7') }), { kind: 'retry', at: NOW + 7_000, reason: 'status 429 with Retry-After' }, 'at the deadline is still in time')
  t.match(decide({ ...base, deadline: NOW + 100, outcome: response(502) }), { kind: 'give_up', code: 'batch_expired' })
  t.same(decide({ ...base, deadline: NOW - 1, outcome: response(200) }), { kind: 'success' }, 'an answer that came is kept')
  t.same(decide({ ...base, attempt: 10_000, outcome: response(503) }), { kind: 'retry', at: NOW + 15_000, reason: 'status 503' }, 'no attempt limit')
})

t.test('the budget defers retries when exhausted and refills from successes', async (t) => {
  const options: BudgetOptions = { ratio: 0.5, minPerSecond: 2, maxTokens: 3 }
  const deadline = NOW + HOUR
  let state = newBudget(NOW, options)
  const admissions = []
  for (let i = 0; i < 4; i++) {
    const next = admitRetry(state, NOW, deadline, half, options)
    state = next.state
    admissions.push(next.admission)
  }
  t.same(admissions, [{ kind: 'send' }, { kind: 'send' }, { kind: 'send' }, { kind: 'defer', at: NOW + 750 }],
    'three tokens, then a wait of one token at 2/s (500 ms) plus half again of jitter')
  t.equal(state.tokens, 0, 'a refused retry takes no token')

  const trickled = admitRetry(state, NOW + 500, deadline, half, options)
  t.same(trickled.admission, { kind: 'send' }, 'the trickle made one token in 500 ms')
  t.equal(trickled.state.tokens, 0)

  state = recordSuccess(recordSuccess(trickled.state, NOW + 500, options), NOW + 500, options)
  t.equal(state.tokens, 1, 'two successes at ratio 0.5 buy one retry')
  t.same(admitRetry(state, NOW + 500, deadline, half, options).admission, { kind: 'send' })

  t.same(admitRetry({ tokens: 0, at: NOW }, NOW, NOW + 700, half, options).admission,
    { kind: 'give_up', code: 'batch_expired', reason: 'retry budget exhausted until past the batch\'s deadline' })
  t.equal(recordSuccess({ tokens: 3, at: NOW }, NOW + 10_000, options).tokens, 3, 'never above maxTokens')
})

t.test('RetryBudgets keeps one budget per upstream, on an injected clock', async (t) => {
  let now = NOW
  const budgets = new RetryBudgets({ budget: { ratio: 0.1, minPerSecond: 1, maxTokens: 2 }, clock: () => now, random: () => 0 })
  const deadline = NOW + HOUR
  t.same([budgets.admit('a', deadline), budgets.admit('a', deadline), budgets.admit('a', deadline)],
    [{ kind: 'send' }, { kind: 'send' }, { kind: 'defer', at: NOW + 1_000 }])
  t.same(budgets.admit('b', deadline), { kind: 'send' }, 'a dead upstream does not spend another\'s budget')
  for (let i = 0; i < 10; i++) budgets.success('a')
  t.equal(Math.round(budgets.tokens('a') * 1000) / 1000, 1)
  now += 500
  t.equal(Math.round(budgets.tokens('a') * 1000) / 1000, 1.5)
  t.same(budgets.admit('a', deadline), { kind: 'send' })
})
