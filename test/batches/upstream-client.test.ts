import t from 'tap'
import type { Test } from 'tap'
import { createUpstreamClients, DEFAULT_UPSTREAM_CLIENT_OPTIONS } from '../../src/batches/upstream-client.js'
import type { UpstreamClientOptions, UpstreamOutcome } from '../../src/batches/upstream-client.js'
import { parseUpstreamBase } from '../../src/batches/upstream-url.js'
import { startControllableUpstream } from './helpers/controllable-upstream.js'

const line = { method: 'POST', url: '/v1/chat/completions', body: { model: 'm1', messages: [{ role: 'user', content: 'hi' }] } } as const

async function setup (t: Test, options: Partial<UpstreamClientOptions> = {}) {
  const upstream = await startControllableUpstream()
  const clients = createUpstreamClients({ ...DEFAULT_UPSTREAM_CLIENT_OPTIONS, ...options })
  t.teardown(async () => { await clients.close(); await upstream.close() })
  return { upstream, clients, base: parseUpstreamBase(`${upstream.url}/v1`) }
}

function transportCode (outcome: UpstreamOutcome): string {
  return outcome.kind === 'transport' ? outcome.code : `response ${outcome.status}`
}

t.test('sequential requests reuse one keep-alive socket; path, key and answer are exact', async (t) => {
  const { upstream, clients, base } = await setup(t, { apiKey: 'sk-secret' })
  for (let i = 0; i < 50; i++) {
    const outcome = await clients.send(base, line)
    if (outcome.kind !== 'response') throw new Error(`unexpected ${transportCode(outcome)}`)
    t.equal(outcome.status, 200)
    t.equal(outcome.requestId, `req_${i + 1}`)
    t.equal(outcome.bodyIsJson, true)
  }
  // Not exactly 1: undici may find its one socket still marked busy for a tick after a
  // body ends and open a second; what matters is that 50 requests do not open 50.
  t.ok(upstream.connections() <= 2, `50 sequential requests, ${upstream.connections()} sockets`)
  t.equal(upstream.requests.length, 50)
  t.match(upstream.requests[0], { method: 'POST', url: '/v1/chat/completions', authorization: 'Bearer sk-secret', body: line.body })
})

t.test('no key, no Authorization header', async (t) => {
  const { upstream, clients, base } = await setup(t)
  await clients.send(base, line)
  t.equal(upstream.requests[0]?.authorization, undefined)
})

t.test('parallel requests stay within the pool and reuse its sockets', async (t) => {
  const { upstream, clients, base } = await setup(t, { connections: 4 })
  upstream.setFallback({ latencyMs: 30 })
  const outcomes = await Promise.all(Array.from({ length: 40 }, async () => await clients.send(base, line)))
  t.same(outcomes.map((o) => o.kind === 'response' ? o.status : o.code), Array.from({ length: 40 }, () => 200))
  t.equal(upstream.maxInFlight(), 4)
  t.equal(upstream.connections(), 4)
})

t.test('an abort mid-request closes the socket on the upstream side', async (t) => {
  const { upstream, clients, base } = await setup(t)
  upstream.queue({ latencyMs: 5_000 })
  const controller = new AbortController()
  const started = Date.now()
  setTimeout(() => { controller.abort() }, 100)
  const outcome = await clients.send(base, { ...line, signal: controller.signal })
  t.equal(transportCode(outcome), 'aborted')
  t.ok(Date.now() - started < 2_000, 'returned at the abort, not at the answer')
  for (let i = 0; i < 50 && upstream.inFlight() > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(upstream.abortedRequests(), 1, 'the server saw its response socket close')
  t.equal(upstream.inFlight(), 0)
  const after = await clients.send(base, line)
  t.equal(after.kind === 'response' ? after.status : after.code, 200, 'the pool opens a new socket afterwards')
  t.equal(upstream.connections(), 2)
})

t.test('headers timeout', async (t) => {
  const { upstream, clients, base } = await setup(t, { headersTimeoutMs: 200 })
  upstream.queue({ latencyMs: 1_500 })
  t.equal(transportCode(await clients.send(base, line)), 'headers_timeout')
})

t.test('body timeout', async (t) => {
  const { upstream, clients, base } = await setup(t, { bodyTimeoutMs: 200 })
  upstream.queue({ stallBodyMs: 1_500 })
  t.equal(transportCode(await clients.send(base, line)), 'body_timeout')
})

t.test('an answer over the bound is response_too_large, declared or chunked', async (t) => {
  const { upstream, clients, base } = await setup(t, { maxResponseBytes: 1_000 })
  upstream.queue({ bodyBytes: 10_000 }, { bodyBytes: 10_000, stallBodyMs: 0 }, { bodyBytes: 1_000 })
  t.equal(transportCode(await clients.send(base, line)), 'response_too_large', 'content-length over the bound')
  t.equal(transportCode(await clients.send(base, line)), 'response_too_large', 'chunked body over the bound')
  const exact = await clients.send(base, line)
  t.equal(exact.kind === 'response' ? exact.status : exact.code, 200, 'exactly at the bound is read')
})

t.test('refused while the listener is closed, answered again once it reopens', async (t) => {
  const { upstream, clients, base } = await setup(t)
  t.equal(transportCode(await clients.send(base, line)), 'response 200')
  await upstream.refuse()
  t.equal(transportCode(await clients.send(base, line)), 'connect_refused')
  t.equal(transportCode(await clients.send(base, line)), 'connect_refused')
  await upstream.reopen()
  t.equal(transportCode(await clients.send(base, line)), 'response 200')
})

t.test('a socket closed by the upstream mid-request is connection_reset', async (t) => {
  const { upstream, clients, base } = await setup(t)
  upstream.queue({ latencyMs: 2_000 })
  const pending = clients.send(base, line)
  await new Promise((resolve) => setTimeout(resolve, 100))
  await upstream.refuse()
  t.equal(transportCode(await pending), 'connection_reset')
})

t.test('429 with Retry-After, 5xx and a 400 for a chosen model come back as responses', async (t) => {
  const { upstream, clients, base } = await setup(t)
  upstream.queue({ status: 429, retryAfter: '3' }, { status: 503 })
  upstream.rejectModels('bad-model')
  const limited = await clients.send(base, line)
  t.match(limited, { kind: 'response', status: 429, retryAfter: '3', bodyIsJson: true })
  t.match(await clients.send(base, line), { kind: 'response', status: 503, retryAfter: null })
  const rejected = await clients.send(base, { ...line, body: { model: 'bad-model' } })
  t.same(rejected.kind === 'response' ? [rejected.status, rejected.body] : rejected.code,
    [400, { error: { message: 'model bad-model is not served', type: 'invalid_request_error', param: 'model', code: null } }])
})

t.test('a closed client sends nothing', async (t) => {
  const { upstream, clients, base } = await setup(t)
  await clients.close()
  t.equal(transportCode(await clients.send(base, line)), 'transport_error')
  t.equal(upstream.requests.length, 0)
})
