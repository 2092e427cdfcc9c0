import t from 'tap'
import { KEY_A, listBlobs, startServer } from '../helpers/app.js'
import { postMultipart, send } from '../helpers/multipart.js'
import { assertHealthy, assertNothingStored } from './helpers/server.js'

const request = (id: string, body: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => JSON.stringify({
  custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model: 'm', messages: [{ role: 'user', content: 'hi' }], ...body }, ...extra
})
/** A valid line 1, then the bomb on line 2, then a valid line 3: the line numbers must say 2. */
const around = (bomb: Buffer | string) => Buffer.concat([Buffer.from(`${request('first')}\n`), Buffer.from(bomb), Buffer.from(`\n${request('last')}\n`)])
const raw = (...parts: Array<string | number[]>) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))))
const lineWith = (before: string, bytes: number[], after: string) => raw(before, bytes, after)

const DIGITS = '9'.repeat(100_000)
// [what, file, the errors expected as [code, line, param]]
const refused: Array<[string, Buffer, Array<[string, number | null, string | null]>]> = [
  ['100,000 [', around('['.repeat(100_000)), [['invalid_json_line', 2, null]]],
  ['100,000 nested arrays, balanced', around('['.repeat(100_000) + ']'.repeat(100_000)), [['invalid_json_line', 2, null]]],
  ['100,000 nested objects, balanced', around('{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000)), [['missing_required_parameter', 2, 'custom_id'], ['invalid_method', 2, 'method'], ['invalid_url', 2, 'url'], ['missing_required_parameter', 2, 'body']]],
  ['1e999999 as the line', around('1e999999'), [['invalid_json_line', 2, null]]],
  ['1e999999 as custom_id', around(request('x').replace('"custom_id":"x"', '"custom_id":1e999999')), [['invalid_custom_id', 2, 'custom_id']]],
  ['100,000 digits as the line', around(DIGITS), [['invalid_json_line', 2, null]]],
  ['100,000 digits as body.model', around(request('x').replace('"model":"m"', `"model":${DIGITS}`)), [['invalid_parameter', 2, 'body.model']]],
  ['a custom_id of 1 MiB', around(request('c'.repeat(1024 * 1024))), [['invalid_custom_id', 2, 'custom_id']]],
  ['a string of 7 MiB (past the 6 MiB line limit)', around(request('big', { messages: [{ role: 'user', content: 's'.repeat(7 * 1024 * 1024) }] })), [['line_too_large', 2, null]]],
  ['a raw NUL inside a string', around(lineWith('{"custom_id":"a', [0], 'b"}')), [['invalid_json_line', 2, null]]],
  ['a line of NUL bytes', around(raw([0, 0, 0, 0])), [['invalid_json_line', 2, null]]],
  ['invalid UTF-8 (FF FE)', around(lineWith(request('x').slice(0, 20), [0xff, 0xfe], request('x').slice(20))), [['invalid_encoding', 2, null]]],
  ['an overlong encoding (C0 AF)', around(lineWith(request('x').slice(0, 20), [0xc0, 0xaf], request('x').slice(20))), [['invalid_encoding', 2, null]]],
  ['a lone surrogate in UTF-8 (ED A0 80)', around(lineWith(request('x').slice(0, 20), [0xed, 0xa0, 0x80], request('x').slice(20))), [['invalid_encoding', 2, null]]],
  ['a 4-byte sequence past U+10FFFF (F4 90 80 80)', around(lineWith(request('x').slice(0, 20), [0xf4, 0x90, 0x80, 0x80], request('x').slice(20))), [['invalid_encoding', 2, null]]],
  ['a UTF-16LE file', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(request('u16'), 'utf16le')]), [['invalid_encoding', 1, null]]],
  ['a BOM on line 2', around(raw([0xef, 0xbb, 0xbf], request('bom'))), [['invalid_json_line', 2, null]]]
]

t.test('JSON bombs in a batch file: refused with the right code and line, nothing stored, the server healthy', async (t) => {
  const server = await startServer(t)
  for (const [what, content, expected] of refused) {
    const started = Date.now()
    const res = await postMultipart(`${server.url}/v1/files`, [{ name: 'purpose', value: 'batch' }, { name: 'file', filename: 'bomb.jsonl', content }], { key: KEY_A })
    t.equal(res.status, 400, `${what}: 400`)
    const error = res.json().error
    t.equal(error.code, 'invalid_batch_file', `${what}: invalid_batch_file`)
    t.same(error.errors.map((e: { code: string, line: number | null, param: string | null }) => [e.code, e.line, e.param]), expected, `${what}: errors`)
    t.equal(error.error_count, expected.length, `${what}: error_count`)
    t.ok(error.message.length < 2000, `${what}: a message of ${error.message.length} characters`)
    t.ok(Date.now() - started < 10_000, `${what}: answered in ${Date.now() - started} ms`)
  }
  await assertNothingStored(t, server, 'after every bomb')
  await assertHealthy(t, server, 'after every bomb')
})

t.test('well-formed but hostile JSON that the rules allow is stored byte-exact, and pollutes nothing', async (t) => {
  const server = await startServer(t)
  const accepted: Array<[string, string]> = [
    // The validator checks the request's shape; what the model receives is OpenAI's business.
    ['100,000 nested arrays inside a message', request('deep', { messages: [{ role: 'user', content: JSON.parse('['.repeat(10) + ']'.repeat(10)) }] }).replace('[[[[[[[[[[]]]]]]]]]]', '['.repeat(100_000) + ']'.repeat(100_000))],
    ['an escaped NUL and lone surrogate', request('esc', { messages: [{ role: 'user', content: 'a\u0000b\ud800c' }] })],
    ['__proto__ and constructor keys', `{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},${request('proto').slice(1)}`],
    ['1e999999 in an unchecked body field', request('num', { temperature: 1 }).replace('"temperature":1', '"temperature":1e999999')]
  ]
  for (const [what, line] of accepted) {
    const content = Buffer.from(`${line}\n`)
    const res = await postMultipart(`${server.url}/v1/files`, [{ name: 'purpose', value: 'batch' }, { name: 'file', filename: 'ok.jsonl', content }], { key: KEY_A })
    t.equal(res.status, 200, `${what}: stored`)
    const download = await send(`${server.url}/v1/files/${String(res.json().id)}/content`, 'GET', { authorization: `Bearer ${KEY_A}` })
    t.equal(download.body, content.toString(), `${what}: byte-exact`)
  }
  t.equal((Object.prototype as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched')
  t.equal((await listBlobs(server.dataDir)).length, accepted.length)
})
