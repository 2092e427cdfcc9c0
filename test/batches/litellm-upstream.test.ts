/**
 * Our upstream client against a real OpenAI-compatible server that no one here wrote:
 * LiteLLM's proxy, started by scripts/test-services.sh with mock models (no database, no
 * network). What is asserted is that version's (LITELLM_VERSION in the script) real
 * answers, which the retry policy and the result lines depend on: the success shape, the
 * request-id header it does (not) send, and the status of each refusal.
 */
import { request } from 'undici'
import t from 'tap'
import type { Test } from 'tap'
import { createUpstreamClients, DEFAULT_UPSTREAM_CLIENT_OPTIONS } from '../../src/batches/upstream-client.js'
import type { UpstreamClients, UpstreamOutcome } from '../../src/batches/upstream-client.js'
import { parseUpstreamBase, upstreamPath } from '../../src/batches/upstream-url.js'

const baseUrl = process.env.LITELLM_BASE_URL
const masterKey = process.env.LITELLM_MASTER_KEY ?? ''
// The mock-chat model's answer: LITELLM_MOCK_TEXT in scripts/test-services.sh.
const MOCK_TEXT = 'files-api test answer from the LiteLLM mock'

const chatLine = (model: string) => ({
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model, messages: [{ role: 'user', content: 'Say hello.' }] }
}) as const

type Response = Extract<UpstreamOutcome, { kind: 'response' }>

function asResponse (t: Test, outcome: UpstreamOutcome): Response {
  if (outcome.kind !== 'response') throw new Error(`expected an HTTP answer, got transport ${outcome.code}: ${outcome.message}`)
  t.equal(outcome.bodyIsJson, true, 'the answer is JSON')
  return outcome
}

function clientsWith (t: Test, apiKey: string | undefined): UpstreamClients {
  const clients = createUpstreamClients({ ...DEFAULT_UPSTREAM_CLIENT_OPTIONS, apiKey })
  t.teardown(async () => { await clients.close() })
  return clients
}

if (baseUrl === undefined || baseUrl === '') {
  t.test('LiteLLM proxy as the upstream', {
    skip: 'LITELLM_BASE_URL is not set: run `eval "$(bash scripts/test-services.sh litellm)"` (CI gets it from test-services.sh start)'
  }, async () => {})
} else {
  const base = parseUpstreamBase(baseUrl)

  t.test('a chat completion line: 200, the mock answer and its usage', async (t) => {
    const clients = clientsWith(t, masterKey)
    const res = asResponse(t, await clients.send(base, chatLine('mock-chat')))
    t.equal(res.status, 200)
    t.match(res.body, {
      id: /^chatcmpl-/,
      object: 'chat.completion',
      model: 'mock-chat',
      choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: MOCK_TEXT } }]
    })
    // LiteLLM's fixed mock counts (DEFAULT_MOCK_RESPONSE_*_TOKEN_COUNT); the batch's usage
    // sums these, so they must be plain integers.
    t.same((res.body as { usage: unknown }).usage, { prompt_tokens: 10, completion_tokens: 20, total_tokens: 30 })
    // LiteLLM sends no x-request-id (its id is x-litellm-call-id, next test): a result
    // line's response.request_id is null against it.
    t.equal(res.requestId, null)
    t.equal(res.retryAfter, null)
  })

  t.test('request ids: x-litellm-call-id, a UUID per request; no x-request-id, even when one is sent', async (t) => {
    // Raw undici, because the client keeps only the headers the engine uses.
    const send = async () => await request(`${base.origin}${upstreamPath(base, '/v1/chat/completions')}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${masterKey}`, 'content-type': 'application/json', 'x-request-id': 'files-api-probe' },
      body: JSON.stringify(chatLine('mock-chat').body)
    })
    const ids: string[] = []
    for (let i = 0; i < 2; i++) {
      const res = await send()
      await res.body.dump()
      t.equal(res.statusCode, 200)
      t.equal(res.headers['x-request-id'], undefined)
      const id = res.headers['x-litellm-call-id']
      t.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
      ids.push(String(id))
    }
    t.not(ids[0], ids[1], 'one id per request')
  })

  t.test('an embeddings line: 200 and the mock vector', async (t) => {
    const clients = clientsWith(t, masterKey)
    const res = asResponse(t, await clients.send(base, { method: 'POST', url: '/v1/embeddings', body: { model: 'mock-embed', input: 'hello' } }))
    t.equal(res.status, 200)
    t.match(res.body, { object: 'list', model: 'mock-embed', data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2, 0.3] }] })
  })

  t.test('a wrong key: 400 no_db_connection, an HTTP answer (final for the retry policy), not a 401', async (t) => {
    // Without a database LiteLLM knows only its master key, and answers any other bearer
    // token "No connected db." with 400 rather than 401.
    const clients = clientsWith(t, 'sk-not-the-master-key')
    const res = asResponse(t, await clients.send(base, chatLine('mock-chat')))
    t.equal(res.status, 400)
    t.same(res.body, { error: { message: 'No connected db.', type: 'no_db_connection', param: null, code: '400' } })
  })

  t.test('no key: 401 auth_error', async (t) => {
    const clients = clientsWith(t, undefined)
    const res = asResponse(t, await clients.send(base, chatLine('mock-chat')))
    t.equal(res.status, 401)
    t.match(res.body, { error: { type: 'auth_error', code: '401', message: /No api key passed in/ } })
  })

  t.test('an unknown model: 400 invalid_request_error naming it', async (t) => {
    const clients = clientsWith(t, masterKey)
    const res = asResponse(t, await clients.send(base, chatLine('no-such-model')))
    t.equal(res.status, 400)
    t.match(res.body, { error: { type: 'invalid_request_error', code: '400', message: /Invalid model name passed in model=no-such-model/ } })
  })

  t.test('a rate-limited model: 429 without Retry-After (the policy backs off on its own)', async (t) => {
    const clients = clientsWith(t, masterKey)
    const res = asResponse(t, await clients.send(base, chatLine('mock-429')))
    t.equal(res.status, 429)
    t.equal(res.retryAfter, null)
    t.match(res.body, { error: { type: 'throttling_error', code: '429' } })
  })

  t.test('16 lines in parallel through one pool: all 200 with the mock answer', async (t) => {
    const clients = clientsWith(t, masterKey)
    const outcomes = await Promise.all(Array.from({ length: 16 }, async () => await clients.send(base, chatLine('mock-chat'))))
    t.same(outcomes.map((o) => o.kind === 'response' ? o.status : o.code), Array.from({ length: 16 }, () => 200))
    t.same(outcomes.map((o) => o.kind === 'response' ? (o.body as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content : null),
      Array.from({ length: 16 }, () => MOCK_TEXT))
  })
}
