import { deepStrictEqual } from 'node:assert/strict'
import fc from 'fast-check'
import t from 'tap'
import { BatchValidator, DEFAULT_BATCH_URLS, type BatchValidationResult, type BatchValidatorOptions } from '../../src/jsonl/batch-validator.js'
import { MAX_LINE, assemble, fileArb } from './helpers/batch-files.js'
import { bytesArb, chunk, chunkingArb, runs } from './helpers/chunking.js'

function options (overrides: Partial<BatchValidatorOptions> = {}): BatchValidatorOptions {
  return { maxRequests: 50000, maxLineBytes: MAX_LINE, allowedUrls: DEFAULT_BATCH_URLS, modelPolicy: 'warn', ...overrides }
}

function validate (chunks: Buffer[], opts: BatchValidatorOptions): BatchValidationResult {
  const validator = new BatchValidator(opts)
  for (const c of chunks) validator.write(c)
  return validator.end()
}

const triples = (list: BatchValidationResult['errors']) => list.map((e) => [e.code, e.line, e.param])

/** Line numbers as the splitter model counts them (see line-splitter.property.test.ts). */
function physicalLines (input: Buffer, max: number): { count: number, oversized: number[] } {
  const body = input.subarray(0, 3).equals(Buffer.from([0xef, 0xbb, 0xbf])) ? input.subarray(3) : input
  const pieces = body.toString('latin1').split('\n')
  if (pieces.at(-1) === '') pieces.pop()
  const oversized = pieces.flatMap((p, i) => ((p.endsWith('\r') ? p.length - 1 : p.length) > max ? [i + 1] : []))
  return { count: pieces.length, oversized }
}

let propertyRuns = 0

t.test('any bytes: every chunking gives the one-chunk verdict, lines in range, line_too_large exactly where the splitter says', async (t) => {
  const maxArb = fc.oneof(fc.constant(MAX_LINE), fc.integer({ min: 1, max: 40 }))
  fc.assert(fc.property(bytesArb, maxArb, chunkingArb, chunkingArb, (input, max, a, b) => {
    propertyRuns++
    const opts = options({ maxLineBytes: max, maxRequests: 3 })
    const whole = validate([input], opts)
    const first = validate(chunk(input, a), opts)
    const second = validate(chunk(input, b), opts)
    if (JSON.stringify(first) !== JSON.stringify(whole) || JSON.stringify(second) !== JSON.stringify(whole)) return false
    const lines = physicalLines(input, max)
    if (!whole.errors.every((e) => (e.code === 'empty_file' ? e.line === null : e.line !== null && e.line >= 1 && e.line <= lines.count))) return false
    const tooLarge = whole.errors.filter((e) => e.code === 'line_too_large').map((e) => e.line)
    return whole.errorCount > whole.errors.length || JSON.stringify(tooLarge) === JSON.stringify(lines.oversized)
  }), runs(1200))
  t.pass('1200 runs')
})

t.test('structured JSONL: the rules\' verdict, codes, params and lines, for any chunking', async (t) => {
  const seen = new Map<string, number>()
  fc.assert(fc.property(fileArb, chunkingArb, (spec, chunking) => {
    propertyRuns++
    const { bytes, expected } = assemble(spec)
    const opts = options({ maxRequests: spec.maxRequests, maxReportedErrors: spec.maxReported })
    const got = validate(chunk(bytes, chunking), opts)
    const whole = validate([bytes], opts)
    for (const e of got.errors) seen.set(e.code, (seen.get(e.code) ?? 0) + 1)
    // Thrown, not t.same: fast-check then shrinks the file and reports the smallest one with the diff.
    deepStrictEqual({
      valid: got.valid,
      errors: triples(got.errors),
      errorCount: got.errorCount,
      warnings: triples(got.warnings),
      warningCount: got.warningCount,
      requests: got.requests,
      bytes: got.bytes
    }, {
      valid: expected.errors.length === 0,
      errors: expected.errors.slice(0, spec.maxReported),
      errorCount: expected.errors.length,
      warnings: expected.warnings.slice(0, spec.maxReported),
      warningCount: expected.warnings.length,
      requests: expected.requests,
      bytes: bytes.length
    }, 'as the rules say')
    deepStrictEqual(got, whole, 'as in one chunk')
  }), runs(600))
  t.pass('600 runs')
  // The generator must reach every code it can produce, or the property proves less than it says.
  const codes = ['empty_line', 'invalid_json_line', 'invalid_encoding', 'line_too_large', 'invalid_method', 'invalid_url',
    'missing_required_parameter', 'duplicate_custom_id', 'streaming_unsupported', 'too_many_tasks', 'empty_file']
  for (const code of codes) t.ok((seen.get(code) ?? 0) > 0, `generated files hit ${code} (${seen.get(code) ?? 0} times)`)
})

t.test('duplicate custom_ids: found exactly, naming the first line, while the id table grows', async (t) => {
  // Thousands of ids, so the fingerprint table's segments grow several times mid-file.
  const idsArb = fc.array(fc.oneof(
    { weight: 1, arbitrary: fc.constantFrom('a', 'b', 'é', '😀', 'x'.repeat(512)) },
    { weight: 6, arbitrary: fc.string({ minLength: 1, maxLength: 6, unit: 'grapheme' }) }
  ), { minLength: 1, maxLength: 3000, size: 'max' })
  fc.assert(fc.property(idsArb, chunkingArb, (ids, chunking) => {
    propertyRuns++
    const text = ids.map((id) => JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/embeddings', body: { model: 'm', input: 'x' } })).join('\n')
    const got = validate(chunk(Buffer.from(text), chunking), options({ maxLineBytes: 4096, maxReportedErrors: 5000 }))
    const first = new Map<string, number>()
    const want: Array<[number, string]> = []
    ids.forEach((id, i) => {
      const line = first.get(id)
      if (line === undefined) first.set(id, i + 1)
      else want.push([i + 1, `already used on line ${line};`])
    })
    deepStrictEqual(got.errors.map((e) => [e.line, / already used on line \d+;/.exec(e.message)?.[0].trim()]), want)
  }), runs(60))
  t.pass('60 runs')
})

t.test('property runs', async (t) => {
  t.equal(propertyRuns, 1860, `${propertyRuns} validator property runs`)
})
