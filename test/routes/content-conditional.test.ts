import t from 'tap'
import { KEY_A, startServer } from '../helpers/app.js'
import { postMultipart } from '../helpers/multipart.js'

const REPRESENTATION = ['etag', 'last-modified', 'cache-control', 'accept-ranges', 'content-type', 'content-disposition']

t.test('conditional requests over a real socket; the file\'s headers only on success', async (t) => {
  const server = await startServer(t)
  const bytes = '0123456789abcdefghij\n'
  const up = await postMultipart(`${server.url}/v1/files`, [{ name: 'purpose', value: 'user_data' }, { name: 'file', filename: 'a.bin', content: Buffer.from(bytes) }], { key: KEY_A })
  const url = `${server.url}/v1/files/${up.json().id as string}/content`
  const auth = { authorization: `Bearer ${KEY_A}` }
  const whole = await fetch(url, { headers: auth })
  const etag = whole.headers.get('etag') ?? ''
  const lastModified = whole.headers.get('last-modified') ?? ''
  t.equal(await whole.text(), bytes)

  const cases: Array<[string, Record<string, string>, number, string, string[]]> = [
    ['list, weak', { 'if-none-match': `"x", W/${etag}` }, 304, '', ['etag', 'cache-control']],
    ['*', { 'if-none-match': '*' }, 304, '', ['etag', 'cache-control']],
    ['If-Modified-Since', { 'if-modified-since': lastModified }, 304, '', ['etag', 'cache-control']],
    ['If-Match fails', { 'if-match': '"x"' }, 412, '', []],
    ['If-Match holds', { 'if-match': etag, range: 'bytes=0-1' }, 206, '01', REPRESENTATION],
    ['If-Range date', { 'if-range': lastModified, range: 'bytes=2-3' }, 206, '23', REPRESENTATION],
    ['If-Range weak', { 'if-range': `W/${etag}`, range: 'bytes=2-3' }, 200, bytes, REPRESENTATION],
    ['416', { range: 'bytes=99-' }, 416, '', []]
  ]
  for (const [what, headers, status, body, present] of cases) {
    const res = await fetch(url, { headers: { ...auth, ...headers } })
    const text = await res.text()
    t.equal(res.status, status, what)
    if (status < 400) t.equal(text, body, what)
    // An error's Content-Type is its own JSON body's, not the file's.
    if (status >= 400) t.match(res.headers.get('content-type'), /^application\/json/, what)
    for (const name of REPRESENTATION.filter((n) => status < 400 || n !== 'content-type')) {
      t.equal(res.headers.has(name), present.includes(name), `${what}: ${name}`)
    }
  }
  const missing = await fetch(`${server.url}/v1/files/file-00000000000000000000000000/content`, { headers: auth })
  t.equal(missing.status, 404)
  for (const name of ['etag', 'content-disposition', 'cache-control', 'last-modified']) t.notOk(missing.headers.has(name), `404: ${name}`)
})
