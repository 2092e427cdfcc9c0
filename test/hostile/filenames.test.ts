import t from 'tap'
import { KEY_A, listBlobs, objectKeyOf, startServer } from '../helpers/app.js'
import { getJson, send } from '../helpers/multipart.js'

const B = 'filename-boundary-77c1'

/** An upload whose file part's Content-Disposition parameters are written verbatim. */
function upload (url: string, params: string, content: string, purpose = 'user_data') {
  const body = `--${B}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n${purpose}\r\n` +
    `--${B}\r\nContent-Disposition: form-data; name="file"${params}\r\nContent-Type: application/octet-stream\r\n\r\n${content}\r\n--${B}--\r\n`
  return send(`${url}/v1/files`, 'POST', { authorization: `Bearer ${KEY_A}`, 'content-type': `multipart/form-data; boundary=${B}` }, Buffer.from(body))
}

const long = 'é'.repeat(5000) + 'x'.repeat(5000)
// [what, Content-Disposition parameters as sent, the filename the service must keep]
const cases: Array<[string, string, string]> = [
  ['parent paths', '; filename="../../etc/passwd"', 'passwd'],
  ['both separators', '; filename="a/b\\\\c"', 'c'],
  ['a Windows path', '; filename="C:\\\\Windows\\\\system32\\\\x.jsonl"', 'x.jsonl'],
  ['only ..', '; filename=".."', 'file'],
  ['only .', '; filename="."', 'file'],
  ['control characters', '; filename="a\u0001b\u007fc\u0000d\te.txt"', 'abcde.txt'],
  ['only control characters', '; filename="\u0001\u0002"', 'file'],
  ['10,000 characters', `; filename="${long}"`, 'é'.repeat(255)],
  ['right-to-left marks and overrides', '; filename="invoice\u202egpj.exe\u200f\u2066.txt"', 'invoicegpj.exe.txt'],
  ['quotes', '; filename="a\\"b\'c.txt"', 'a"b\'c.txt'],
  ['a semicolon and an equals sign', '; filename="x; filename=evil.html"', 'x; filename=evil.html'],
  ['percent-encoded bytes', '; filename="%2e%2e%2fetc%2fpasswd%0d%0a"', '%2e%2e%2fetc%2fpasswd%0d%0a'],
  ['RFC 5987 filename*', '; filename*=UTF-8\'\'%E2%82%AC%20rates.txt', '€ rates.txt'],
  ['an empty name', '; filename=""', 'file'],
  ['white space only', '; filename="   "', 'file'],
  // The parser keeps what follows the last '/', as for any path.
  ['HTML', '; filename="<script>alert(1)</script>.html"', 'script>.html'],
  ['HTML without a slash', '; filename="<img src=x onerror=alert(1)>.html"', '<img src=x onerror=alert(1)>.html'],
  ['a header injection attempt in UTF-8', '; filename="x\u2028Set-Cookie: a=b\u0085.txt"', 'x\u2028Set-Cookie: a=b.txt']
]

/** RFC 8187 ext-value → text. */
function decodeExtValue (value: string): string {
  const match = /^UTF-8''(.*)$/.exec(value)
  return match === null ? '' : decodeURIComponent(match[1] ?? '')
}

t.test('hostile filenames are stored and returned harmlessly; object keys never derive from them', async (t) => {
  const server = await startServer(t)
  const ids: string[] = []
  for (const [what, params, expected] of cases) {
    const content = `content of ${what}\n`
    const res = await upload(server.url, params, content)
    t.equal(res.status, 200, `${what}: stored`)
    const stored = res.json() as { id: string, filename: string }
    ids.push(stored.id)
    t.equal(stored.filename, expected, `${what}: the filename kept`)
    t.ok(Array.from(stored.filename).length <= 255, `${what}: at most 255 characters`)
    t.notOk(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/.test(stored.filename), `${what}: no control or bidi character`)

    for (const family of ['/v1', '/api/v1']) {
      const retrieved = await getJson(`${server.url}${family}/files/${stored.id}`, KEY_A)
      const object = family === '/v1' ? retrieved.json() : retrieved.json().data
      t.equal(object.filename, expected, `${what}: ${family} retrieve`)
    }
    const download = await send(`${server.url}/v1/files/${stored.id}/content`, 'GET', { authorization: `Bearer ${KEY_A}` })
    t.equal(download.status, 200, `${what}: content`)
    t.equal(download.body, content, `${what}: the bytes`)
    const disposition = download.headers['content-disposition'] ?? ''
    t.match(disposition, /^attachment; filename="[\x20-\x21\x23-\x5b\x5d-\x7e]*"; filename\*=UTF-8''[A-Za-z0-9\-._~!$&+,;=:@%]*$/, `${what}: one well-formed header`)
    t.equal(decodeExtValue(disposition.split('filename*=')[1] ?? ''), expected, `${what}: filename* decodes to the stored name`)
    t.equal(download.headers['set-cookie'], undefined, `${what}: nothing injected`)
    // Only .jsonl earns a type of its own; .html, .svg and the like are never served as such.
    t.equal(download.headers['content-type'], expected.toLowerCase().endsWith('.jsonl') ? 'application/jsonl' : 'application/octet-stream', `${what}: content type`)
  }
  const list = await getJson(`${server.url}/v1/files?order=asc`, KEY_A)
  t.same(list.json().data.map((f: { filename: string }) => f.filename), cases.map(([, , expected]) => expected), 'the list shows the same names')

  // Keys are files/<project>/<upload id>: nothing of the client's name reaches the disk.
  const blobs = await listBlobs(server.dataDir)
  t.same(blobs.map((b) => b.split(':')[0]).sort(), (await Promise.all(ids.map(async (id) => objectKeyOf(server.app, id)))).sort())
})

t.test('a filename with a bare line break is dropped by the parser: the part is skipped, nothing stored', async (t) => {
  const server = await startServer(t)
  const res = await upload(server.url, '; filename="a\rb.jsonl"', 'x')
  t.equal(res.status, 400)
  t.equal(res.json().error.code, 'missing_required_parameter')
  t.same(await listBlobs(server.dataDir), [])
})

t.test('batch files: the extension rule reads the sanitized name', async (t) => {
  const server = await startServer(t)
  const line = '{"custom_id":"1","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"x"}]}}\n'
  // An override character cannot make "x.jsonl" look like something else, nor hide the real end.
  const ok = await upload(server.url, '; filename="../x\u202e.jsonl"', line, 'batch')
  t.equal(ok.status, 200)
  t.equal(ok.json().filename, 'x.jsonl')
  const refused = await upload(server.url, '; filename="x.jsonl\u0000.exe"', line, 'batch')
  t.equal(refused.status, 400)
  t.equal(refused.json().error.code, 'invalid_batch_file')
  t.equal(refused.json().error.errors[0].code, 'invalid_file_format')
})
