import t from 'tap'
import { KEY_A, startServer } from '../helpers/app.js'
import { send } from '../helpers/multipart.js'
import { FAMILIES, assertHealthy, assertNothingStored, familyError, rawExchange } from './helpers/server.js'

const B = 'hostile-boundary-3f9a'
const VALID = '{"custom_id":"1","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"hi"}]}}\n'

const field = (name: string, value: string, extraHeaders = ''): string =>
  `--${B}\r\nContent-Disposition: form-data; name="${name}"\r\n${extraHeaders}\r\n${value}\r\n`
const file = (name: string, filename: string | null, content: string, type = 'application/octet-stream'): string =>
  `--${B}\r\nContent-Disposition: form-data; name="${name}"${filename === null ? '' : `; filename="${filename}"`}\r\nContent-Type: ${type}\r\n\r\n${content}\r\n`
const end = `--${B}--\r\n`

interface Case {
  name: string
  body: string
  contentType?: string
  status: number
  code: string
  param?: string | null
}

const nested = `--inner\r\nContent-Disposition: file; filename="a.jsonl"\r\nContent-Type: application/octet-stream\r\n\r\n${VALID}\r\n--inner--`
const cases: Case[] = [
  { name: 'no file part', body: field('purpose', 'batch') + end, status: 400, code: 'missing_required_parameter', param: 'file' },
  { name: 'two file parts', body: field('purpose', 'batch') + file('file', 'a.jsonl', VALID) + file('file', 'b.jsonl', VALID) + end, status: 400, code: 'invalid_multipart' },
  { name: 'a file part without filename', body: field('purpose', 'user_data') + file('file', null, 'bytes') + end, status: 400, code: 'missing_required_parameter', param: 'file' },
  { name: '"file" sent as a text field', body: field('purpose', 'batch') + field('file', VALID) + end, status: 400, code: 'invalid_parameter', param: 'file' },
  { name: 'purpose longer than fieldSize (64 KiB)', body: field('purpose', `batch${' '.repeat(70 * 1024)}`) + file('file', 'a.jsonl', VALID) + end, status: 400, code: 'invalid_parameter', param: 'purpose' },
  { name: 'an unknown purpose of 60 KiB', body: field('purpose', 'x'.repeat(60 * 1024)) + file('file', 'a.jsonl', VALID) + end, status: 400, code: 'invalid_value', param: 'purpose' },
  { name: '5000 fields', body: Array.from({ length: 5000 }, (_, i) => field(`f${i}`, 'v')).join('') + file('file', 'a.jsonl', VALID) + end, status: 400, code: 'invalid_multipart' },
  { name: 'a field name of 10 KB', body: field('n'.repeat(10 * 1024), 'v') + field('purpose', 'batch') + file('file', 'a.jsonl', VALID) + end, status: 400, code: 'invalid_multipart' },
  { name: 'a file field name of 10 KB', body: field('purpose', 'batch') + file('n'.repeat(10 * 1024), 'a.jsonl', VALID) + end, status: 400, code: 'invalid_multipart' },
  { name: 'a field named __proto__', body: field('__proto__', 'x') + field('purpose', 'batch') + file('file', 'a.jsonl', VALID) + end, status: 400, code: 'invalid_multipart' },
  { name: 'no boundary in the body at all', body: `purpose=batch&file=${encodeURIComponent(VALID)}`, status: 400, code: 'invalid_multipart' },
  { name: 'a wrong boundary', body: (field('purpose', 'batch') + file('file', 'a.jsonl', VALID) + end).replaceAll(B, 'other-boundary'), status: 400, code: 'invalid_multipart' },
  { name: 'a body that ends inside the file part', body: field('purpose', 'batch') + file('file', 'a.jsonl', VALID).slice(0, -10), status: 400, code: 'invalid_multipart' },
  { name: 'a body without its closing delimiter', body: field('purpose', 'batch') + file('file', 'a.jsonl', VALID), status: 400, code: 'invalid_multipart' },
  { name: 'a part with no headers', body: field('purpose', 'batch') + `--${B}\r\n\r\n${VALID}\r\n` + end, status: 400, code: 'missing_required_parameter', param: 'file' },
  { name: 'nested multipart/mixed (RFC 2388 style)', body: field('purpose', 'batch') + field('file', nested, 'Content-Type: multipart/mixed; boundary=inner\r\n') + end, status: 400, code: 'invalid_parameter', param: 'file' },
  { name: 'a JSON-typed field that is not JSON', body: field('purpose', '{', 'Content-Type: application/json\r\n') + file('file', 'a.jsonl', VALID) + end, status: 400, code: 'invalid_multipart' },
  { name: 'multipart/form-data without a boundary parameter', contentType: 'multipart/form-data', body: field('purpose', 'batch') + file('file', 'a.jsonl', VALID) + end, status: 400, code: 'invalid_multipart' },
  { name: 'an empty boundary parameter', contentType: 'multipart/form-data; boundary=', body: field('purpose', 'batch') + file('file', 'a.jsonl', VALID) + end, status: 400, code: 'invalid_multipart' },
  { name: 'multipart/mixed instead of form-data', contentType: `multipart/mixed; boundary=${B}`, body: field('purpose', 'batch') + file('file', 'a.jsonl', VALID) + end, status: 415, code: 'unsupported_media_type' },
  { name: 'an empty body', body: '', status: 400, code: 'missing_required_parameter', param: 'file' }
]

t.test('malformed multipart over real sockets: a clear 4xx in each family\'s shape, nothing stored', async (t) => {
  const server = await startServer(t)
  let tried = 0
  for (const c of cases) {
    for (const family of FAMILIES) {
      const res = await send(`${server.url}${family}/files`, 'POST', {
        authorization: `Bearer ${KEY_A}`,
        'content-type': c.contentType ?? `multipart/form-data; boundary=${B}`
      }, Buffer.from(c.body))
      const error = familyError(t, res, family, c.status, c.code, `${c.name} (${family})`)
      if (c.param !== undefined) t.equal(error.param, c.param, `${c.name}: param`)
      tried++
    }
  }
  t.equal(tried, cases.length * 2)
  await assertNothingStored(t, server, 'after every malformed body')
  await assertHealthy(t, server, 'after every malformed body')
})

t.test('an unknown field longer than fieldSize is cut and ignored; the file is stored intact', async (t) => {
  const server = await startServer(t)
  const body = field('note', 'z'.repeat(200 * 1024)) + field('purpose', 'batch') + file('file', 'a.jsonl', VALID) + end
  const res = await send(`${server.url}/v1/files`, 'POST', { authorization: `Bearer ${KEY_A}`, 'content-type': `multipart/form-data; boundary=${B}` }, Buffer.from(body))
  t.equal(res.status, 200)
  const content = await send(`${server.url}/v1/files/${String(res.json().id)}/content`, 'GET', { authorization: `Bearer ${KEY_A}` })
  t.equal(content.body, VALID)
})

t.test('a Content-Length the body never reaches, then the client closes: nothing stored, still healthy', async (t) => {
  const server = await startServer(t)
  const head = `POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY_A}\r\nContent-Type: multipart/form-data; boundary=${B}\r\nContent-Length: 100000\r\n\r\n`
  const answer = await rawExchange(server.url, head, Buffer.from(field('purpose', 'batch') + file('file', 'a.jsonl', VALID).slice(0, 80)), { timeoutMs: 1000, end: true })
  // The server cannot answer a request that never finished; it must neither hang nor crash.
  t.ok(answer.status === 0 || answer.status === 400, `no answer or 400 (got ${answer.status})`)
  // The abandoned put is cleaned up asynchronously once the request is torn down.
  await new Promise((resolve) => setTimeout(resolve, 200))
  await assertNothingStored(t, server, 'after a truncated request')
  await assertHealthy(t, server, 'after a truncated request')
})
