import t from 'tap'
import { CONTENT_SECURITY_POLICY } from '../../src/routes/content.js'
import { KEY_A, startServer } from '../helpers/app.js'
import { postMultipart, send } from '../helpers/multipart.js'

const CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"

t.test('file content can be neither sniffed, framed, nor run as a page, whatever its bytes and name', async (t) => {
  t.equal(CONTENT_SECURITY_POLICY, CSP)
  const server = await startServer(t)
  const html = Buffer.from('<!doctype html><script>alert(document.cookie)</script>\n')
  const up = await postMultipart(`${server.url}/v1/files`, [{ name: 'purpose', value: 'user_data' }, { name: 'file', filename: 'page.html', content: html }], { key: KEY_A })
  t.equal(up.status, 200)
  const id = up.json().id as string
  const auth = { authorization: `Bearer ${KEY_A}` }
  const whole = await send(`${server.url}/v1/files/${id}/content`, 'GET', auth)
  const etag = whole.headers.etag ?? ''
  const answers: Array<[string, Awaited<ReturnType<typeof send>>, number]> = [
    ['200', whole, 200],
    ['206', await send(`${server.url}/api/v1/files/${id}/content`, 'GET', { ...auth, range: 'bytes=0-4' }), 206],
    ['304', await send(`${server.url}/v1/files/${id}/content`, 'GET', { ...auth, 'if-none-match': etag }), 304],
    ['416', await send(`${server.url}/v1/files/${id}/content`, 'GET', { ...auth, range: 'bytes=9999-' }), 416],
    ['HEAD', await send(`${server.url}/v1/files/${id}/content`, 'HEAD', auth), 200]
  ]
  for (const [what, res, status] of answers) {
    t.equal(res.status, status, what)
    t.equal(res.headers['content-security-policy'], CSP, `${what}: CSP`)
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${what}: nosniff`)
    t.equal(res.headers['x-frame-options'], 'DENY', `${what}: not framed`)
    t.equal(res.headers['referrer-policy'], 'no-referrer', `${what}: no referrer`)
  }
  t.equal(whole.headers['content-type'], 'application/octet-stream', 'an .html upload is not served as HTML')
  t.match(whole.headers['content-disposition'] ?? '', /^attachment;/, 'a download, never inline')
  t.equal(whole.headers['cache-control'], 'private, no-cache', 'no shared cache keeps it')
})

t.test('every other answer, errors included, carries nosniff and X-Frame-Options', async (t) => {
  const server = await startServer(t)
  const auth = { authorization: `Bearer ${KEY_A}` }
  const requests: Array<[string, string, Record<string, string>, number]> = [
    ['GET', '/v1/files', auth, 200],
    ['GET', '/api/v1/files', {}, 401],
    ['GET', '/v1/files/file-01J00000000000000000000000', auth, 404],
    ['GET', '/v1/files/%zz', auth, 400],
    ['GET', `/v1/files/${'x'.repeat(300)}`, auth, 414],
    ['POST', '/v1/files', { ...auth, 'content-type': 'text/plain' }, 415],
    ['GET', '/health', {}, 200],
    ['GET', '/openapi.json', {}, 200]
  ]
  for (const [method, path, headers, status] of requests) {
    const res = await send(`${server.url}${path}`, method, headers)
    t.equal(res.status, status, `${method} ${path}`)
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${method} ${path}: nosniff`)
    t.equal(res.headers['x-frame-options'], 'DENY', `${method} ${path}: not framed`)
    t.equal(res.headers['access-control-allow-origin'], undefined, `${method} ${path}: no CORS by default`)
  }
})
