import t from 'tap'
import { KEY_A, startServer } from '../helpers/app.js'
import { send } from '../helpers/multipart.js'
import { FAMILIES, assertHealthy, familyError, rawExchange, rawJson } from './helpers/server.js'

const auth = { authorization: `Bearer ${KEY_A}` }
const ID = 'file-01J00000000000000000000000'

t.test('wrong methods, unknown routes, bad paths and absurd ids: a clear 4xx in the family\'s shape', async (t) => {
  const server = await startServer(t)
  // [method, path after the family prefix, status, code]
  const cases: Array<[string, string, number, string]> = [
    ['PUT', '/files', 404, 'unknown_url'],
    ['PATCH', '/files', 404, 'unknown_url'],
    ['PUT', `/files/${ID}`, 404, 'unknown_url'],
    ['PATCH', `/files/${ID}/content`, 404, 'unknown_url'],
    ['POST', `/files/${ID}`, 404, 'unknown_url'],
    ['DELETE', '/files', 404, 'unknown_url'],
    ['OPTIONS', '/files', 404, 'unknown_url'],
    ['GET', '/nothing-here', 404, 'unknown_url'],
    ['GET', `/files/${ID}/content/more`, 404, 'unknown_url'],
    ['GET', '/files/%zz', 400, 'malformed_url'],
    ['GET', '/files/%E0%A4%A/content', 400, 'malformed_url'],
    ['DELETE', '/files/%', 400, 'malformed_url'],
    ['GET', `/files/${'f'.repeat(10 * 1024)}`, 414, 'uri_too_long'],
    ['GET', `/files/${'f'.repeat(10 * 1024)}/content`, 414, 'uri_too_long'],
    ['DELETE', `/files/file-${'0'.repeat(10 * 1024)}`, 414, 'uri_too_long'],
    ['GET', `/files/file-${'0'.repeat(190)}`, 404, 'file_not_found'],
    ['GET', '/files/file-%00%0d%0aSet-Cookie:%20a=b', 404, 'file_not_found'],
    ['GET', `/files?${'x='.padEnd(10 * 1024, 'a')}`, 200, ''],
    ['GET', '/files?limit=1&limit=2', 400, 'invalid_parameter']
  ]
  let tried = 0
  for (const family of FAMILIES) {
    for (const [method, path, status, code] of cases) {
      const what = `${method} ${family}${path.slice(0, 40)}`
      const res = await send(`${server.url}${family}${path}`, method, auth)
      tried++
      t.equal(res.headers['x-content-type-options'], 'nosniff', `${what}: security headers`)
      t.type(res.headers['x-request-id'], 'string', `${what}: a request id`)
      t.equal(res.headers['set-cookie'], undefined, `${what}: nothing injected`)
      if (status === 200) {
        t.equal(res.status, 200, what)
        continue
      }
      const error = familyError(t, res, family, status, code, what)
      t.notOk(error.message.includes('f'.repeat(300)), `${what}: the path is not echoed whole`)
    }
  }
  t.comment(`${tried} requests`)
  await assertHealthy(t, server, 'afterwards')
})

t.test('absurd headers and request lines: Node\'s parser answers before Fastify routes', async (t) => {
  const server = await startServer(t)
  const { port } = new URL(server.url)
  const head = (target: string, headers: string) => `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${KEY_A}\r\n${headers}Connection: close\r\n\r\n`
  // src/http/client-error.ts answers in OpenAI's shape when llhttp reports
  // HPE_HEADER_OVERFLOW (Node's maxHeaderSize, 16 KiB, counts the request line too).
  const overflow = { error: { message: 'The request line and headers exceed 16 KiB or 1000 fields.', type: 'invalid_request_error', param: null, code: 'request_header_fields_too_large' } }

  const bigValue = await rawExchange(server.url, head('/v1/files', `X-Big: ${'v'.repeat(64 * 1024)}\r\n`))
  t.equal(bigValue.status, 431, 'a 64 KiB header value')
  t.same(rawJson(bigValue.text), overflow)

  const manySmall = await rawExchange(server.url, head('/v1/files', Array.from({ length: 900 }, (_, i) => `X-${i}: v\r\n`).join('')))
  t.equal(manySmall.status, 200, '900 headers within 16 KiB are an ordinary request')
  // Node 24 also caps the number of header fields (about 1000) whatever their size.
  const tooMany = await rawExchange(server.url, head('/v1/files', Array.from({ length: 1000 }, (_, i) => `X-${i}: v\r\n`).join('')))
  t.equal(tooMany.status, 431, '1000 small headers')
  t.same(rawJson(tooMany.text), overflow)

  const manyBig = await rawExchange(server.url, head('/v1/files', Array.from({ length: 1000 }, (_, i) => `X-Header-${i}: ${'v'.repeat(16)}\r\n`).join('')))
  t.equal(manyBig.status, 431, '1000 headers past 16 KiB')
  t.same(rawJson(manyBig.text), overflow)

  for (const family of FAMILIES) {
    const longQuery = await rawExchange(server.url, head(`${family}/files?q=${'q'.repeat(100 * 1024)}`, ''))
    t.equal(longQuery.status, 431, `${family}: a 100 KiB query string`)
    t.same(rawJson(longQuery.text), overflow)
  }

  // llhttp refuses a control character in the target or a header name with a space.
  const badTarget = await rawExchange(server.url, `GET /v1/files\u0001 HTTP/1.1\r\nHost: x\r\n\r\n`)
  t.equal(badTarget.status, 400, 'a control character in the request target')
  t.same(rawJson(badTarget.text), { error: { message: 'The HTTP request could not be parsed.', type: 'invalid_request_error', param: null, code: 'malformed_request' } })
  const badHeader = await rawExchange(server.url, `GET /v1/files HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n`)
  t.equal(badHeader.status, 400, 'a header name with a space')

  const latin1Key = await rawExchange(server.url, `GET /api/v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xe9\xe9\xe9\r\nConnection: close\r\n\r\n`)
  t.equal(latin1Key.status, 401, 'a non-ASCII key is just a wrong key')
  t.match(rawJson(latin1Key.text), { success: false, code: '401', data: { error: { code: 'invalid_api_key' } } })
  const hugeKey = await send(`${server.url}/v1/files`, 'GET', { authorization: `Bearer ${'k'.repeat(12 * 1024)}` })
  t.equal(hugeKey.status, 401, 'a 12 KiB key')
  t.equal(hugeKey.json().error.code, 'invalid_api_key')

  await assertHealthy(t, server, 'afterwards')
})
