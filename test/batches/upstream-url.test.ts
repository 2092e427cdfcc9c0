import t from 'tap'
import { parseUpstreamBase, pickUpstream, singleUpstream, upstreamBases, upstreamPath, upstreamsByModel } from '../../src/batches/upstream-url.js'

t.test('a line url joins a base URL without doubling /v1', async (t) => {
  const join = (base: string, url: string): string => {
    const parsed = parseUpstreamBase(base)
    return parsed.origin + upstreamPath(parsed, url)
  }
  t.equal(join('http://vllm:8000/v1', '/v1/chat/completions'), 'http://vllm:8000/v1/chat/completions')
  t.equal(join('http://vllm:8000/v1/', '/v1/chat/completions'), 'http://vllm:8000/v1/chat/completions')
  t.equal(join('http://vllm:8000', '/v1/chat/completions'), 'http://vllm:8000/v1/chat/completions')
  t.equal(join('http://vllm:8000/', '/v1/embeddings'), 'http://vllm:8000/v1/embeddings')
  t.equal(join('http://gw/openai/v1', '/v1/chat/completions'), 'http://gw/openai/v1/chat/completions')
  t.equal(join('https://gw/openai', '/v1/responses'), 'https://gw/openai/v1/responses')
  t.equal(join('http://gw/v2', '/v1/chat/completions'), 'http://gw/v2/v1/chat/completions', 'only /v1 is folded')
  t.equal(join('http://gw/xv1', '/v1/chat/completions'), 'http://gw/xv1/v1/chat/completions', 'a segment, not a suffix')
})

t.test('base URLs that cannot be right are refused at config time', async (t) => {
  t.throws(() => parseUpstreamBase('vllm:8000'), /http or https/)
  t.throws(() => parseUpstreamBase('not a url'), /not a URL/)
  t.throws(() => parseUpstreamBase('ftp://vllm/v1'), /http or https/)
  t.throws(() => parseUpstreamBase('http://user:sk@vllm/v1'), /credentials/)
  t.throws(() => parseUpstreamBase('http://vllm/v1?x=1'), /query/)
  t.same(parseUpstreamBase('http://VLLM:8000/v1//'), { origin: 'http://vllm:8000', pathPrefix: '/v1', baseUrl: 'http://vllm:8000/v1' })
})

t.test('one upstream for all models, or a model map with an optional fallback', async (t) => {
  const single = singleUpstream('http://vllm:8000/v1')
  t.match(pickUpstream(single, { model: 'anything' }), { ok: true, base: { baseUrl: 'http://vllm:8000/v1' } })
  t.match(pickUpstream(single, {}), { ok: true })

  const map = upstreamsByModel({ llama: 'http://llama:8000/v1', qwen: 'http://qwen:8000/v1', qwen2: 'http://qwen:8000/v1' })
  t.match(pickUpstream(map, { model: 'qwen' }), { ok: true, base: { baseUrl: 'http://qwen:8000/v1' } })
  t.same(pickUpstream(map, { model: 'gpt-4o' }), { ok: false, code: 'model_not_routed', message: 'No upstream serves model "gpt-4o".' })
  t.same(pickUpstream(map, { messages: [] }), { ok: false, code: 'model_not_routed', message: 'No upstream serves model missing.' })
  t.same(pickUpstream(map, null), { ok: false, code: 'model_not_routed', message: 'No upstream serves model missing.' })
  t.same(upstreamBases(map).map((b) => b.baseUrl), ['http://llama:8000/v1', 'http://qwen:8000/v1'], 'one pool per distinct base')

  const withFallback = upstreamsByModel({ llama: 'http://llama:8000/v1' }, 'http://router:4000/v1')
  t.match(pickUpstream(withFallback, { model: 'gpt-4o' }), { ok: true, base: { baseUrl: 'http://router:4000/v1' } })
  t.same(upstreamBases(withFallback).map((b) => b.baseUrl), ['http://llama:8000/v1', 'http://router:4000/v1'])
})
