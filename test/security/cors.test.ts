import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'
import { parseCorsOrigins } from '../../plugins/cors.js'
import { KEY_A, startServer } from '../helpers/app.js'
import { postMultipart, send } from '../helpers/multipart.js'

const APP = 'https://app.example.com'
const DEV = 'http://localhost:5173'
const EVIL = 'https://evil.example'
const auth = { authorization: `Bearer ${KEY_A}` }
const preflight = (origin: string, method = 'POST') => ({ origin, 'access-control-request-method': method, 'access-control-request-headers': 'authorization,content-type' })

function corsHeaders (headers: Record<string, unknown>): string[] {
  return Object.keys(headers).filter((name) => name.startsWith('access-control-'))
}

t.test('CORS_ORIGINS unset (the default): no CORS header on any answer, preflights are unknown routes', async (t) => {
  const server = await startServer(t)
  for (const [method, path, headers] of [
    ['GET', '/v1/files', { ...auth, origin: APP }],
    ['GET', '/api/v1/files', { origin: EVIL }],
    ['GET', '/health', { origin: APP }]
  ] as Array<[string, string, Record<string, string>]>) {
    const res = await send(`${server.url}${path}`, method, headers)
    t.same(corsHeaders(res.headers), [], `${method} ${path}: none`)
  }
  for (const family of ['/v1', '/api/v1']) {
    const res = await send(`${server.url}${family}/files`, 'OPTIONS', preflight(APP))
    t.equal(res.status, 404, `${family}: OPTIONS is not a route`)
    t.same(corsHeaders(res.headers), [])
    const error = family === '/v1' ? res.json().error : res.json().data.error
    t.equal(error.code, 'unknown_url')
  }
})

t.test('CORS_ORIGINS lists origins: those get CORS headers, on errors too; no other origin does', async (t) => {
  const server = await startServer(t, { CORS_ORIGINS: ` ${APP} , ${DEV}` })
  for (const origin of [APP, DEV]) {
    const res = await send(`${server.url}/v1/files`, 'OPTIONS', preflight(origin))
    t.equal(res.status, 204, `${origin}: preflight`)
    t.equal(res.headers['access-control-allow-origin'], origin, 'its own origin echoed')
    t.equal(res.headers['access-control-allow-methods'], 'GET, HEAD, POST, DELETE')
    t.equal(res.headers['access-control-allow-headers'], 'authorization, content-type, x-request-id, range, if-none-match, if-range')
    t.equal(res.headers['access-control-max-age'], '600')
    t.equal(res.headers['access-control-allow-credentials'], undefined, 'keys travel in headers, never cookies')
    t.match(res.headers.vary ?? '', /Origin/, 'caches keep answers per origin')
  }
  const refused = await send(`${server.url}/v1/files`, 'OPTIONS', preflight(EVIL))
  t.equal(refused.headers['access-control-allow-origin'], undefined, 'another origin: no allow-origin, the browser blocks it')

  const list = await send(`${server.url}/v1/files`, 'GET', { ...auth, origin: APP })
  t.equal(list.status, 200)
  t.equal(list.headers['access-control-allow-origin'], APP)
  t.match(list.headers['access-control-expose-headers'] ?? '', /x-request-id.*content-disposition.*retry-after/)
  const unauthorized = await send(`${server.url}/api/v1/files`, 'GET', { origin: APP })
  t.equal(unauthorized.status, 401)
  t.equal(unauthorized.headers['access-control-allow-origin'], APP, 'a browser can read why it was refused')
  t.equal((await send(`${server.url}/v1/files`, 'GET', { ...auth, origin: EVIL })).headers['access-control-allow-origin'], undefined)

  const up = await postMultipart(`${server.url}/v1/files`, [{ name: 'purpose', value: 'user_data' }, { name: 'file', filename: 'a.txt', content: Buffer.from('x') }], { key: KEY_A, headers: { origin: APP } })
  t.equal(up.status, 200)
  t.equal(up.headers['access-control-allow-origin'], APP)
  const content = await send(`${server.url}/v1/files/${String(up.json().id)}/content`, 'GET', { ...auth, origin: APP })
  t.equal(content.headers['access-control-allow-origin'], APP, 'downloads too')
})

t.test('CORS_ORIGINS=*: any origin, still without credentials', async (t) => {
  const server = await startServer(t, { CORS_ORIGINS: '*' })
  const res = await send(`${server.url}/v1/files`, 'GET', { ...auth, origin: EVIL })
  t.equal(res.headers['access-control-allow-origin'], '*')
  t.equal(res.headers['access-control-allow-credentials'], undefined)
})

t.test('CORS_ORIGINS must be origins: a bad value stops start-up naming the variable', async (t) => {
  t.same(parseCorsOrigins(` ${APP},, ${DEV} `), [APP, DEV])
  t.same(parseCorsOrigins(undefined), [])
  for (const bad of ['app.example.com', 'https://app.example.com/path', 'ftp://x', `${APP},,${DEV}`, 'https://a b']) {
    t.throws(() => loadConfig({ CORS_ORIGINS: bad }), ConfigError, JSON.stringify(bad))
    t.throws(() => loadConfig({ CORS_ORIGINS: bad }), /CORS_ORIGINS/)
  }
  t.equal(loadConfig({ CORS_ORIGINS: '' }).CORS_ORIGINS, undefined, 'empty is unset')
})
