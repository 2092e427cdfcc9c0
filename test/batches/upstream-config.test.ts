import t from 'tap'
import { ConfigError, loadConfig, upstreamMap } from '../../src/config.js'

t.test('no upstream setting: no map (creating a batch is refused)', async (t) => {
  t.equal(upstreamMap(loadConfig({})), null)
})

t.test('UPSTREAM_BASE_URL alone serves every model', async (t) => {
  const map = upstreamMap(loadConfig({ UPSTREAM_BASE_URL: 'http://vllm:8000/v1/' }))
  t.same(map, { kind: 'single', base: { origin: 'http://vllm:8000', pathPrefix: '/v1', baseUrl: 'http://vllm:8000/v1' } })
})

t.test('UPSTREAM_MODELS routes models, UPSTREAM_BASE_URL takes the rest', async (t) => {
  const map = upstreamMap(loadConfig({ UPSTREAM_MODELS: 'llama=http://a:8000/v1, qwen = http://b:9000/v1', UPSTREAM_BASE_URL: 'http://c/v1' }))
  t.equal(map?.kind, 'by_model')
  if (map?.kind !== 'by_model') return
  t.same([...map.models.entries()].map(([m, b]) => [m, b.baseUrl]), [['llama', 'http://a:8000/v1'], ['qwen', 'http://b:9000/v1']])
  t.equal(map.fallback?.baseUrl, 'http://c/v1')
  const alone = upstreamMap(loadConfig({ UPSTREAM_MODELS: 'llama=http://a:8000/v1' }))
  t.equal(alone?.kind === 'by_model' ? alone.fallback : 'wrong', null)
})

t.test('a malformed upstream setting stops start-up, naming the variable and never the key', async (t) => {
  for (const [env, pattern] of [
    [{ UPSTREAM_BASE_URL: 'ftp://x' }, /UPSTREAM_BASE_URL/],
    [{ UPSTREAM_BASE_URL: 'http://user:pw@x/v1' }, /UPSTREAM_BASE_URL\/UPSTREAM_MODELS: upstream base URL must not carry credentials/],
    [{ UPSTREAM_MODELS: 'llama' }, /UPSTREAM_MODELS entry "llama" is not model=baseUrl/],
    [{ UPSTREAM_MODELS: 'a=http://x/v1,a=http://y/v1' }, /UPSTREAM_MODELS names "a" twice/],
    [{ UPSTREAM_MODELS: 'a=not a url' }, /upstream base URL is not a URL/]
  ] as const) {
    let caught: unknown
    try {
      loadConfig({ ...env, UPSTREAM_API_KEY: 'sk-never-shown' })
    } catch (error) {
      caught = error
    }
    t.ok(caught instanceof ConfigError, `${JSON.stringify(env)} is a ConfigError`)
    const message = caught instanceof Error ? caught.message : ''
    t.match(message, pattern, JSON.stringify(env))
    t.notMatch(message, /sk-never-shown/)
  }
})
