import { Writable } from 'node:stream'
import t from 'tap'
import { KEY_A, startServer } from '../helpers/app.js'
import { BOUNDARY, postMultipart, send } from '../helpers/multipart.js'
import { batch, filePart, purpose } from './helpers/batch.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

function logCapture (): { stream: Writable, lines: () => Array<Record<string, unknown>>, text: () => string } {
  const chunks: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'))
      callback()
    }
  })
  const text = () => chunks.join('')
  return { stream, text, lines: () => text().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) }
}

t.test('the request id: kept when sane, generated otherwise, echoed on every answer', async (t) => {
  const server = await startServer(t)
  const fresh = await send(`${server.url}/health`, 'GET', {})
  t.match(fresh.headers['x-request-id'], UUID)
  const other = await send(`${server.url}/health`, 'GET', {})
  t.not(other.headers['x-request-id'], fresh.headers['x-request-id'])

  const kept = await send(`${server.url}/health`, 'GET', { 'x-request-id': 'gw-2024/abc:123' })
  t.equal(kept.headers['x-request-id'], 'gw-2024/abc:123')
  const longest = 'a'.repeat(128)
  t.equal((await send(`${server.url}/health`, 'GET', { 'x-request-id': longest })).headers['x-request-id'], longest)

  for (const bad of ['a'.repeat(129), 'has space', 'tab\there', 'é-unicode']) {
    const res = await send(`${server.url}/health`, 'GET', { 'x-request-id': bad })
    t.match(res.headers['x-request-id'], UUID, `${JSON.stringify(bad)} is replaced`)
  }

  // Errors carry it too: refused by auth, by the router, by the upload pipeline.
  const unauthorized = await send(`${server.url}/v1/files`, 'GET', { 'x-request-id': 'req-401' })
  t.equal(unauthorized.status, 401)
  t.equal(unauthorized.headers['x-request-id'], 'req-401')
  const missing = await send(`${server.url}/nowhere`, 'GET', { 'x-request-id': 'req-404' })
  t.equal(missing.status, 404)
  t.equal(missing.headers['x-request-id'], 'req-404')
  const invalid = await postMultipart(`${server.url}/v1/files`, [purpose('batch'), filePart(Buffer.from('{'))], { key: KEY_A, headers: { 'x-request-id': 'req-400' } })
  t.equal(invalid.status, 400)
  t.equal(invalid.headers['x-request-id'], 'req-400')
})

t.test('log lines carry the request id, never the Authorization header or a key', async (t) => {
  const logs = logCapture()
  const server = await startServer(t, {}, { logger: { level: 'trace', stream: logs.stream } })
  const wrongKey = 'sk-wrong-key-that-must-not-be-logged'

  const stored = await postMultipart(`${server.url}/v1/files`, [purpose('batch'), filePart(batch(2))], { key: KEY_A, headers: { 'x-request-id': 'trace-upload-1' } })
  t.equal(stored.status, 200)
  t.equal((await send(`${server.url}/v1/files`, 'GET', { authorization: `Bearer ${wrongKey}`, 'x-request-id': 'trace-bad-key' })).status, 401)
  t.equal((await send(`${server.url}/v1/files`, 'GET', { authorization: `Bearer ${KEY_A}` })).status, 200)
  // Whatever code logs a request's headers, the redaction holds for handed-in logger options too.
  server.app.log.info({ headers: { authorization: `Bearer ${KEY_A}` } }, 'headers logged on purpose')

  const lines = logs.lines()
  const upload = lines.filter((l) => l.reqId === 'trace-upload-1')
  const milestones = ['incoming request', 'file stored', 'request completed']
  t.same(upload.map((l) => l.msg).filter((msg) => milestones.includes(msg as string)), milestones)
  t.equal(upload.find((l) => l.msg === 'file stored')?.fileId, stored.json().id)
  const refused = lines.filter((l) => l.reqId === 'trace-bad-key')
  t.ok(refused.some((l) => l.msg === 'Incorrect API key provided.'), 'the refusal is logged with its request id')
  for (const l of lines.filter((l) => typeof l.msg === 'string' && (l.msg === 'incoming request' || l.msg === 'request completed'))) {
    t.type(l.reqId, 'string')
  }
  const text = logs.text()
  t.notOk(text.includes(KEY_A), 'no key in any log line')
  t.notOk(text.includes(wrongKey), 'not even a wrong one')
  t.notOk(/bearer/i.test(text), 'no Authorization value')
  t.ok(lines.some((l) => l.msg === 'headers logged on purpose' && JSON.stringify(l.headers) === '{"authorization":"[redacted]"}'))
  const busboy = lines.find((l) => l.msg === 'Providing options to busboy' && l.reqId === 'trace-upload-1')
  t.same((busboy?.busboyOptions as { headers?: unknown } | undefined)?.headers, {
    'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
    authorization: '[redacted]',
    'x-request-id': 'trace-upload-1',
    host: server.url.replace('http://', ''),
    connection: 'keep-alive',
    'transfer-encoding': 'chunked'
  }, 'multipart\'s trace line logs the request headers: redacted')
})
