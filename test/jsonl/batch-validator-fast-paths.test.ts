import t from 'tap'
import { Buffer } from 'node:buffer'
import { BatchValidator, DEFAULT_BATCH_URLS, type BatchValidationResult } from '../../src/jsonl/batch-validator.js'
import { assertSameVerdict } from './helpers/equivalence.js'

// The shortcuts taken for speed (src/jsonl, bench/README): each must give the verdicts
// of the plain path it skips.

function validate (text: string | Buffer): BatchValidationResult {
  const validator = new BatchValidator({ maxRequests: 50000, maxLineBytes: 1024 * 1024, allowedUrls: DEFAULT_BATCH_URLS, modelPolicy: 'warn' })
  validator.write(typeof text === 'string' ? Buffer.from(text) : text)
  return validator.end()
}

function line (id: string, patch: Record<string, unknown> = {}, model = 'm'): string {
  return JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model, messages: [{ role: 'user', content: 'Hi' }] }, ...patch })
}

t.test('a null url on the first line is still an invalid url (the repeated-url shortcut)', async (t) => {
  const result = validate(`${line('1', { url: null })}\n${line('2')}\n${line('3', { url: null })}\n`)
  t.strictSame(result.errors.map((e) => [e.code, e.line]), [['invalid_url', 1], ['invalid_url', 3]])
})

t.test('a literal U+FFFD is valid text; a bad byte next to it is not (the decode-first UTF-8 check)', async (t) => {
  const replacement = line('1', {}, 'model-\ufffd')
  t.equal(validate(replacement + '\r\n').valid, true)
  const bad = Buffer.concat([Buffer.from('{"custom_id":"\ufffd'), Buffer.from([0xff]), Buffer.from('"}\r\n')])
  t.strictSame(validate(bad).errors.map((e) => e.code), ['invalid_encoding'])
})

t.test('model counts: the first model first, then the others in order, any name an own key', async (t) => {
  const result = validate([line('1', {}, 'b'), line('2', {}, '__proto__'), line('3', {}, 'b'), line('4', {}, 'a'), line('5', {}, '__proto__')].join('\n'))
  t.strictSame(Object.entries(result.models), [['b', 2], ['__proto__', 2], ['a', 1]])
  t.ok(Object.hasOwn(result.models, '__proto__'))
})

t.test('duplicates are found after the id table has grown', async (t) => {
  const lines: string[] = []
  for (let i = 1; i <= 5000; i++) lines.push(line(`id-${i}`))
  lines.push(line('id-1'), line('id-4999'), line('id-5001'))
  const result = validate(lines.join('\n'))
  t.strictSame(result.errors.map((e) => e.message), [
    'line 5001: custom_id "id-1" already used on line 1; custom_id must be unique within the file.',
    'line 5002: custom_id "id-4999" already used on line 4999; custom_id must be unique within the file.'
  ])
})

t.test('the common-line shortcut: a line unlike line 1 in any one way takes the full checks', async (t) => {
  // Line 1 makes url and model known; each later line differs from it in one way only.
  const first = { custom_id: 'c', method: 'POST', url: '/v1/chat/completions', body: { model: 'm', messages: [{ role: 'user', content: 'Hi' }] } }
  const base = { ...first, custom_id: 'v' }
  const variants: Array<[string, string, string[]]> = [
    ['the same line, another id', JSON.stringify(base), []],
    ['the same line, the same id', JSON.stringify(first), ['duplicate_custom_id']],
    ['messages null', JSON.stringify({ ...base, body: { model: 'm', messages: null } }), ['missing_required_parameter']],
    ['messages absent', JSON.stringify({ ...base, body: { model: 'm' } }), ['missing_required_parameter']],
    ['messages empty', JSON.stringify({ ...base, body: { model: 'm', messages: [] } }), ['invalid_parameter']],
    ['a bad role', JSON.stringify({ ...base, body: { model: 'm', messages: [{ role: 'robot' }] } }), ['invalid_parameter']],
    ['stream true', JSON.stringify({ ...base, body: { ...base.body, stream: true } }), ['streaming_unsupported']],
    ['stream false', JSON.stringify({ ...base, body: { ...base.body, stream: false } }), []],
    ['method post', JSON.stringify({ ...base, method: 'post' }), ['invalid_method']],
    ['another url', JSON.stringify({ ...base, url: '/v1/embeddings' }), ['url_mismatch', 'missing_required_parameter']],
    ['the url escaped', '{"custom_id":"e","method":"POST","url":"\\/v1\\/chat\\/completions","body":{"model":"m","messages":[{"role":"user"}]}}', []],
    ['another model', JSON.stringify({ ...base, body: { ...base.body, model: 'n' } }), []],
    ['the model escaped', '{"custom_id":"f","method":"POST","url":"/v1/chat/completions","body":{"model":"\\u006d","messages":[{"role":"user"}]}}', []],
    ['an empty id', JSON.stringify({ ...base, custom_id: '' }), ['invalid_custom_id']],
    ['a non-ASCII id', JSON.stringify({ ...base, custom_id: 'é' }), []],
    ['an id of 513 characters', JSON.stringify({ ...base, custom_id: 'x'.repeat(513) }), ['invalid_custom_id']],
    ['a numeric id', JSON.stringify({ ...base, custom_id: 7 }), ['invalid_custom_id']],
    ['body null', JSON.stringify({ ...base, body: null }), ['missing_required_parameter']]
  ]
  for (const [name, text, codes] of variants) {
    const result = validate(`${JSON.stringify(first)}\n${text}\n`)
    t.strictSame(result.errors.map((e) => e.code), codes, name)
    t.strictSame(result.errors.map((e) => e.line), codes.map(() => 2), `${name}: on line 2`)
    t.strictSame(result, assertSameVerdict(`${JSON.stringify(first)}\n${text}\n`), `${name}: as the reference`)
  }
  const embeddings = { custom_id: 'a', method: 'POST', url: '/v1/embeddings', body: { model: 'e', input: 'x' } }
  const nullInput = validate(`${JSON.stringify(embeddings)}\n${JSON.stringify({ ...embeddings, custom_id: 'b', body: { model: 'e', input: null } })}\n`)
  t.strictSame(nullInput.errors.map((e) => [e.code, e.param, e.line]), [['missing_required_parameter', 'body.input', 2]], 'input null, on an endpoint whose field is input')
})
