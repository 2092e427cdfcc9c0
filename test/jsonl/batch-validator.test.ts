import t from 'tap'
import { Buffer } from 'node:buffer'
import { readFile } from 'node:fs/promises'
import {
  BatchValidator,
  DEFAULT_BATCH_URLS,
  summarizeBatchErrors,
  validateBatchFilename,
  type BatchValidationResult,
  type BatchValidatorOptions
} from '../../src/jsonl/batch-validator.js'
import type { BatchError } from '../../schemas/batch-error.js'

const OPTIONS: BatchValidatorOptions = {
  maxRequests: 50000,
  maxLineBytes: 6 * 1024 * 1024,
  allowedUrls: DEFAULT_BATCH_URLS,
  modelPolicy: 'warn'
}

function validate (input: string | Buffer, opts: Partial<BatchValidatorOptions> = {}): BatchValidationResult {
  const validator = new BatchValidator({ ...OPTIONS, ...opts })
  validator.write(typeof input === 'string' ? Buffer.from(input) : input)
  return validator.end()
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json | undefined }

/** A valid chat request line; `patch` replaces top-level fields, `body` merges into the body. */
function req (id: string, patch: Record<string, Json | undefined> = {}, body: Record<string, Json | undefined> = {}): string {
  return JSON.stringify({
    custom_id: id,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }], ...body },
    ...patch
  })
}

function file (...lines: string[]): string {
  return lines.join('\n') + '\n'
}

function err (code: string, line: number | null, param: string | null, message: string): BatchError {
  return { code, message, param, line }
}

const URLS = DEFAULT_BATCH_URLS.join(', ')
const ROLES = 'system, user, assistant, tool, developer, function'

t.test('the sample file is valid', async (t) => {
  const sample = await readFile(new URL('../fixtures/test_model.jsonl', import.meta.url).pathname)
  t.strictSame(validate(sample), {
    valid: true,
    requests: 2,
    bytes: 438,
    url: '/v1/chat/completions',
    models: { 'batch-test-model': 2 },
    errors: [],
    errorCount: 0,
    warnings: [],
    warningCount: 0
  })
})

t.test('a BOM, CRLF line ends and a missing final newline are tolerated', async (t) => {
  const input = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${req('1')}\r\n${req('2')}`)])
  const result = validate(input)
  t.equal(result.valid, true)
  t.equal(result.requests, 2)
  t.strictSame(result.errors, [])
})

t.test('invalid_encoding: bad or overlong UTF-8 on a line', async (t) => {
  const bad = Buffer.from('{"custom_id":"\xff","method":"POST"}', 'latin1')
  const overlong = Buffer.from('{"custom_id":"\xc0\xaf"}', 'latin1')
  const input = Buffer.concat([Buffer.from(req('1') + '\n'), bad, Buffer.from('\n'), overlong, Buffer.from('\n' + req('é') + '\n')])
  const result = validate(input)
  t.strictSame(result.errors, [
    err('invalid_encoding', 2, null, 'line 2: is not valid UTF-8 text; save the file with UTF-8 encoding.'),
    err('invalid_encoding', 3, null, 'line 3: is not valid UTF-8 text; save the file with UTF-8 encoding.')
  ])
  t.equal(result.requests, 4)
})

t.test('empty_line: blank lines before a request are errors, trailing ones are not', async (t) => {
  const middle = validate(file(req('1'), '', ' \t', req('2'), '', '  ', ''))
  t.strictSame(middle.errors, [
    err('empty_line', 2, null, 'line 2: is empty; remove blank lines between requests.'),
    err('empty_line', 3, null, 'line 3: is empty; remove blank lines between requests.')
  ])
  t.equal(middle.requests, 2)
  const leading = validate(`\r\n${req('1')}\r\n\r\n\r\n`)
  t.strictSame(leading.errors, [err('empty_line', 1, null, 'line 1: is empty; remove blank lines between requests.')])
  const trailing = validate(file(req('1'), req('2'), '', ' ', '\t'))
  t.equal(trailing.valid, true)
  t.strictSame(trailing.errors, [])
})

t.test('invalid_json_line: unparseable lines and JSON that is not an object', async (t) => {
  const result = validate(file('{"custom_id": "1",', '[1,2]', '"text"', 'null', '42', '[]', req('ok')))
  t.equal(result.errorCount, 6)
  const [broken, ...rest] = result.errors
  t.match(broken, { code: 'invalid_json_line', line: 1, param: null })
  t.match(broken?.message, /^line 1: is not valid JSON \(.+\); write each request as one complete JSON object on a single line\.$/)
  const notObject = (n: number, got: string): BatchError =>
    err('invalid_json_line', n, null, `line ${n}: must be a JSON object with custom_id, method, url and body, got ${got}.`)
  t.strictSame(rest, [notObject(2, 'an array'), notObject(3, '"text"'), notObject(4, 'null'), notObject(5, 'number 42'), notObject(6, 'an empty array')])
})

t.test('custom_id: missing, not a string, empty, too long', async (t) => {
  const long = 'a'.repeat(513)
  const result = validate(file(
    req('x', { custom_id: undefined }),
    req('x', { custom_id: 7 }),
    req('x', { custom_id: '' }),
    req('x', { custom_id: long }),
    req('x', { custom_id: null }),
    req('b'.repeat(512)),
    req('😀'.repeat(512))
  ))
  t.strictSame(result.errors, [
    err('missing_required_parameter', 1, 'custom_id', 'line 1: custom_id is missing; give every request a unique string custom_id.'),
    err('invalid_custom_id', 2, 'custom_id', 'line 2: custom_id must be a non-empty string, got number 7.'),
    err('invalid_custom_id', 3, 'custom_id', 'line 3: custom_id must be a non-empty string, got an empty string.'),
    err('invalid_custom_id', 4, 'custom_id', 'line 4: custom_id is 513 characters long; the limit is 512.'),
    err('missing_required_parameter', 5, 'custom_id', 'line 5: custom_id is missing; give every request a unique string custom_id.')
  ], '512 characters pass, counted as characters, not UTF-16 units')
  const emoji = validate(file(req('😀'.repeat(513))))
  t.strictSame(emoji.errors, [err('invalid_custom_id', 1, 'custom_id', 'line 1: custom_id is 513 characters long; the limit is 512.')])
})

t.test('duplicate_custom_id names the first line, for short and long (digested) ids', async (t) => {
  const long = 'L'.repeat(500)
  const result = validate(file(req('7'), req('8'), req('7'), req(long), req(long + 'x'), req(long), req('7')))
  const quotedLong = JSON.stringify('L'.repeat(60) + '…')
  t.strictSame(result.errors, [
    err('duplicate_custom_id', 3, 'custom_id', 'line 3: custom_id "7" already used on line 1; custom_id must be unique within the file.'),
    err('duplicate_custom_id', 6, 'custom_id', `line 6: custom_id ${quotedLong} already used on line 4; custom_id must be unique within the file.`),
    err('duplicate_custom_id', 7, 'custom_id', 'line 7: custom_id "7" already used on line 1; custom_id must be unique within the file.')
  ])
})

t.test('50,000 distinct ids of 512 characters validate, the next request is too many', async (t) => {
  const validator = new BatchValidator(OPTIONS)
  const prefix = 'p'.repeat(506)
  for (let i = 0; i <= 50000; i++) {
    validator.write(Buffer.from(req(prefix + String(i).padStart(6, '0')) + '\n'))
  }
  const result = validator.end()
  t.equal(result.requests, 50001)
  t.strictSame(result.errors, [
    err('too_many_tasks', 50001, null, 'line 50001: the file has more than 50000 requests, the limit for one batch; split it into several files.')
  ])
})

t.test('invalid_method: missing or not POST', async (t) => {
  const result = validate(file(req('1', { method: undefined }), req('2', { method: 'GET' }), req('3', { method: 'post' })))
  t.strictSame(result.errors, [
    err('invalid_method', 1, 'method', 'line 1: method is missing; set "method": "POST".'),
    err('invalid_method', 2, 'method', 'line 2: method must be "POST", got "GET".'),
    err('invalid_method', 3, 'method', 'line 3: method must be "POST", got "post".')
  ])
})

t.test('invalid_url and url_mismatch: the first allowed url sets the file url', async (t) => {
  const result = validate(file(
    req('1', { url: '/v1/images' }),
    req('2', { url: '/v1/embeddings' }, { input: 'x' }),
    req('3', { url: undefined }),
    req('4')
  ))
  t.equal(result.url, '/v1/embeddings')
  t.strictSame(result.errors, [
    err('invalid_url', 1, 'url', `line 1: url "/v1/images" is not supported; use one of ${URLS}.`),
    err('invalid_url', 3, 'url', `line 3: url is missing; use one of ${URLS}.`),
    err('url_mismatch', 4, 'url', 'line 4: url "/v1/chat/completions" differs from "/v1/embeddings" on line 2; all requests in a batch file must use the same url.')
  ])
  const restricted = validate(file(req('1')), { allowedUrls: ['/v1/embeddings'] })
  t.strictSame(restricted.errors, [err('invalid_url', 1, 'url', 'line 1: url "/v1/chat/completions" is not supported; use one of /v1/embeddings.')])
  t.equal(restricted.url, null)
})

t.test('body: missing or not an object', async (t) => {
  const result = validate(file(req('1', { body: undefined }), req('2', { body: 'hi' }), req('3', { body: [] })))
  t.strictSame(result.errors, [
    err('missing_required_parameter', 1, 'body', 'line 1: body is missing; put the request parameters in a "body" object.'),
    err('invalid_parameter', 2, 'body', 'line 2: body must be a JSON object, got "hi".'),
    err('invalid_parameter', 3, 'body', 'line 3: body must be a JSON object, got an empty array.')
  ])
})

t.test('body.model: missing, empty or not a string', async (t) => {
  const result = validate(file(req('1', {}, { model: undefined }), req('2', {}, { model: '' }), req('3', {}, { model: 5 })))
  const missing = (n: number): BatchError =>
    err('missing_required_parameter', n, 'body.model', `line ${n}: body.model is missing or empty; name the model that should run the request.`)
  t.strictSame(result.errors, [missing(1), missing(2), err('invalid_parameter', 3, 'body.model', 'line 3: body.model must be a string, got number 5.')])
  t.strictSame(result.models, {})
})

t.test('chat completions: messages present, a non-empty array of objects with a known role', async (t) => {
  const result = validate(file(
    req('1', {}, { messages: undefined }),
    req('2', {}, { messages: [] }),
    req('3', {}, { messages: 'hi' }),
    req('4', {}, { messages: [{ role: 'user' }, { role: 'user' }, { role: 'robot' }, { role: 'nope' }] }),
    req('5', {}, { messages: [{ role: 'user' }, 'hi'] }),
    req('6', {}, { messages: [{ content: 'no role' }] }),
    req('7', {}, { messages: ['system', 'user', 'assistant', 'tool', 'developer', 'function'].map((role) => ({ role })) })
  ))
  t.strictSame(result.errors, [
    err('missing_required_parameter', 1, 'body.messages', 'line 1: body.messages is missing; /v1/chat/completions requests need it.'),
    err('invalid_parameter', 2, 'body.messages', 'line 2: body.messages must be a non-empty array of messages, got an empty array.'),
    err('invalid_parameter', 3, 'body.messages', 'line 3: body.messages must be a non-empty array of messages, got "hi".'),
    err('invalid_parameter', 4, 'body.messages[2].role', `line 4: body.messages[2].role must be one of ${ROLES}, got "robot".`),
    err('invalid_parameter', 5, 'body.messages[1]', 'line 5: body.messages[1] must be an object with a role, got "hi".'),
    err('invalid_parameter', 6, 'body.messages[0].role', `line 6: body.messages[0].role must be one of ${ROLES}, got no value.`)
  ], 'only the first bad message of a line is reported; all six roles pass')
})

t.test('embeddings, moderations, responses need input; completions need prompt', async (t) => {
  for (const [url, field] of [['/v1/embeddings', 'input'], ['/v1/moderations', 'input'], ['/v1/responses', 'input'], ['/v1/completions', 'prompt']] as const) {
    const result = validate(file(
      req('ok', { url }, { messages: undefined, [field]: 'text' }),
      req('bad', { url }, { messages: [{ role: 'user' }] })
    ))
    t.strictSame(result.errors, [
      err('missing_required_parameter', 2, `body.${field}`, `line 2: body.${field} is missing; ${url} requests need it.`)
    ], url)
    t.equal(result.url, url)
  }
})

t.test('streaming_unsupported when body.stream is true', async (t) => {
  const result = validate(file(req('1', {}, { stream: false }), req('2', {}, { stream: true })))
  t.strictSame(result.errors, [
    err('streaming_unsupported', 2, 'body.stream', 'line 2: body.stream is true, but batch requests cannot stream; remove it or set it to false.')
  ])
})

t.test('model_mismatch is a warning by default and an error under reject', async (t) => {
  const input = file(req('1', {}, { model: 'a' }), req('2', {}, { model: 'b' }), req('3', {}, { model: 'a' }))
  const mismatch = err('model_mismatch', 2, 'body.model', 'line 2: body.model "b" differs from "a" on line 1; a batch runs one model.')
  const warned = validate(input)
  t.strictSame(warned, {
    valid: true,
    requests: 3,
    bytes: Buffer.byteLength(input),
    url: '/v1/chat/completions',
    models: { a: 2, b: 1 },
    errors: [],
    errorCount: 0,
    warnings: [mismatch],
    warningCount: 1
  })
  const rejected = validate(input, { modelPolicy: 'reject' })
  t.equal(rejected.valid, false)
  t.strictSame(rejected.errors, [mismatch])
  t.strictSame(rejected.warnings, [])
})

t.test('too_many_tasks is reported once and validation goes on', async (t) => {
  const result = validate(file(req('1'), req('2'), req('3'), req('4'), req('5'), req('1')), { maxRequests: 3 })
  t.equal(result.requests, 6)
  t.strictSame(result.errors, [
    err('too_many_tasks', 4, null, 'line 4: the file has more than 3 requests, the limit for one batch; split it into several files.'),
    err('duplicate_custom_id', 6, 'custom_id', 'line 6: custom_id "1" already used on line 1; custom_id must be unique within the file.')
  ])
})

t.test('line_too_large: the line is not parsed but counts as a request', async (t) => {
  const big = req('2', {}, { messages: [{ role: 'user', content: 'x'.repeat(500) }] })
  const result = validate(file(req('1'), '', big, req('2'), req('1')), { maxLineBytes: 200 })
  t.equal(result.requests, 4)
  t.strictSame(result.errors, [
    err('empty_line', 2, null, 'line 2: is empty; remove blank lines between requests.'),
    err('line_too_large', 3, null, 'line 3: is longer than the limit of 200 bytes per request line; shorten the request.'),
    err('duplicate_custom_id', 5, 'custom_id', 'line 5: custom_id "1" already used on line 1; custom_id must be unique within the file.')
  ], 'custom_id "2" of the oversized line was never registered')
})

t.test('empty_file when no line holds a request', async (t) => {
  const expected = [err('empty_file', null, null, 'The file has no requests; a batch file needs one JSON request object per line.')]
  for (const input of ['', '\n', ' \n\t\n\r\n', '\xef\xbb\xbf']) {
    const result = validate(Buffer.from(input, 'latin1'))
    t.strictSame(result.errors, expected, JSON.stringify(input))
    t.equal(result.requests, 0)
    t.equal(result.valid, false)
  }
})

t.test('every independent error of one line is reported, in field order', async (t) => {
  const line = JSON.stringify({ custom_id: 1, method: 'GET', url: '/v1/x', body: { model: 2, stream: true } })
  const result = validate(file(line))
  t.strictSame(result.errors.map((e) => [e.code, e.param]), [
    ['invalid_custom_id', 'custom_id'],
    ['invalid_method', 'method'],
    ['invalid_url', 'url'],
    ['invalid_parameter', 'body.model'],
    ['streaming_unsupported', 'body.stream']
  ])
})

t.test('errors and warnings are capped, counts stay exact', async (t) => {
  const lines = [req('ok')]
  for (let i = 0; i < 150; i++) lines.push(req('ok', {}, { model: 'other' }))
  const result = validate(file(...lines))
  t.equal(result.errorCount, 150)
  t.equal(result.errors.length, 100)
  t.strictSame(result.errors.map((e) => e.line), Array.from({ length: 100 }, (_, i) => i + 2))
  t.equal(result.warningCount, 150)
  t.equal(result.warnings.length, 100)
  const small = validate(file(...lines), { maxReportedErrors: 3 })
  t.equal(small.errors.length, 3)
  t.equal(small.warnings.length, 3)
  t.equal(small.errorCount, 150)
})

t.test('errorCount is live while writing', async (t) => {
  const validator = new BatchValidator(OPTIONS)
  validator.write(Buffer.from(req('1') + '\n'))
  t.equal(validator.errorCount, 0)
  validator.write(Buffer.from(req('1') + '\nnot json'))
  t.equal(validator.errorCount, 1, 'the finished duplicate line counts at once')
  const result = validator.end()
  t.equal(validator.errorCount, 2, 'the final line counts at end()')
  t.equal(validator.end(), result, 'end() is idempotent')
})

t.test('the result does not depend on how the file is chunked', async (t) => {
  const input = Buffer.concat([
    Buffer.from([0xef, 0xbb, 0xbf]),
    Buffer.from(`${req('é')}\r\n\r\n${req('é', {}, { model: 'b' })}\n{bad\n`),
    Buffer.from([0x7b, 0xc3, 0x0a]),
    Buffer.from(`${req('3', { url: '/v1/embeddings' }, { input: '😀' })}\n${'x'.repeat(300)}\n\n`)
  ])
  const opts = { maxLineBytes: 250 }
  const whole = validate(input, opts)
  t.strictSame(whole.errors.map((e) => [e.code, e.line]), [
    ['empty_line', 2],
    ['duplicate_custom_id', 3],
    ['invalid_json_line', 4],
    ['invalid_encoding', 5],
    ['url_mismatch', 6],
    ['line_too_large', 7]
  ])
  t.equal(whole.warningCount, 1)
  let differing = 0
  for (let i = 0; i <= input.length; i++) {
    const validator = new BatchValidator({ ...OPTIONS, ...opts })
    validator.write(input.subarray(0, i))
    validator.write(input.subarray(i))
    if (JSON.stringify(validator.end()) !== JSON.stringify(whole)) differing++
  }
  t.equal(differing, 0, `identical at all ${input.length + 1} split offsets`)
  const validator = new BatchValidator({ ...OPTIONS, ...opts })
  for (const byte of input) validator.write(Buffer.from([byte]))
  t.strictSame(validator.end(), whole, '1-byte chunks')
})

t.test('validateBatchFilename wants .jsonl in any case', async (t) => {
  t.equal(validateBatchFilename('batch.jsonl'), null)
  t.equal(validateBatchFilename('BATCH.JsonL'), null)
  t.strictSame(validateBatchFilename('batch.json'), {
    code: 'invalid_file_format',
    message: 'The file "batch.json" is not a batch file: its name must end in .jsonl (one JSON request per line).',
    param: 'file',
    line: null
  })
  t.equal(validateBatchFilename('.jsonl')?.code, 'invalid_file_format')
  t.equal(validateBatchFilename('batch.jsonl.txt')?.code, 'invalid_file_format')
})

t.test('summarizeBatchErrors gives one short message', async (t) => {
  const three = validate(file(req('7'), req('8'), req('7'), '', req('9', { method: 'GET' })))
  t.equal(summarizeBatchErrors(three),
    'The batch file has 3 errors. line 3: custom_id "7" already used on line 1; custom_id must be unique within the file. ' +
    'line 4: is empty; remove blank lines between requests. line 5: method must be "POST", got "GET".')
  const many = validate(file(...Array.from({ length: 12 }, () => req('1', { method: 'GET' }))))
  const summary = summarizeBatchErrors(many)
  t.match(summary, /^The batch file has 23 errors, first 5 shown\. line 1: method must be "POST", got "GET"\. line 2: /)
  t.notMatch(summary, /line 4:/, 'only the first five errors (lines 1 to 3) are listed')
  t.equal(summarizeBatchErrors(validate('')), 'The batch file has 1 error. The file has no requests; a batch file needs one JSON request object per line.')
  t.equal(summarizeBatchErrors(validate(file(req('1')))), 'The batch file is valid (1 request).')
})
