import fc from 'fast-check'

/**
 * Structured batch files whose verdict is known by construction: each line is drawn from
 * a kind (a valid request, a line near the byte limit, bad JSON, bad UTF-8, a blank line,
 * one field wrong...) and the file is assembled line by line, computing the errors the
 * README's rules give. It is an oracle only for these kinds, not a second validator.
 */

export const MAX_LINE = 200
const CHAT_URL = '/v1/chat/completions'

export type LineKind =
  | { kind: 'valid', text: string }
  | { kind: 'padded', delta: number, pad: string }
  | { kind: 'blank', text: string }
  | { kind: 'bad-json', text: string }
  | { kind: 'not-object', text: string }
  | { kind: 'bad-utf8', bytes: readonly number[], at: number }
  | { kind: 'nul' }
  | { kind: 'late-bom' }
  | { kind: 'wrong-method' }
  | { kind: 'bad-url' }
  | { kind: 'no-custom-id' }
  | { kind: 'stream' }
  | { kind: 'other-model' }
  | { kind: 'duplicate', pick: number }
  | { kind: 'many-faults' }

export interface FileSpec {
  bom: boolean
  lines: Array<{ line: LineKind, crlf: boolean }>
  finalNewline: boolean
  maxRequests: number
  maxReported: number
}

export interface Expected {
  errors: Array<[code: string, line: number | null, param: string | null]>
  warnings: Array<[code: string, line: number | null, param: string | null]>
  requests: number
}

const textArb = fc.oneof(
  fc.string({ maxLength: 12, unit: 'grapheme' }),
  fc.constantFrom('é', '😀', '€', '日本語', 'a\u0000b', '\u202e', '\ud800', 'x"\\y', '\t')
)

export const lineArb: fc.Arbitrary<LineKind> = fc.oneof(
  { weight: 8, arbitrary: textArb.map((text): LineKind => ({ kind: 'valid', text })) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('padded' as const), delta: fc.integer({ min: -2, max: 2 }), pad: fc.constantFrom('x', 'é', '€', '😀') }) },
  { weight: 2, arbitrary: fc.constantFrom('', ' ', '\t', '  \t ').map((text): LineKind => ({ kind: 'blank', text })) },
  { weight: 1, arbitrary: fc.constantFrom('{', '{"custom_id":', 'nope', '{"a":1}}', '[', '{"a":tru}', "{'a':1}").map((text): LineKind => ({ kind: 'bad-json', text })) },
  { weight: 1, arbitrary: fc.constantFrom('[1,2]', '"str"', '1e999999', 'null', 'true', '[]', '-0').map((text): LineKind => ({ kind: 'not-object', text })) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('bad-utf8' as const),
      // A stray byte, an overlong '/', a UTF-16 surrogate in UTF-8, a cut 3-byte sequence, a 5-byte lead.
      bytes: fc.constantFrom([0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x80]),
      at: fc.nat()
    })
  },
  { weight: 1, arbitrary: fc.constantFrom<LineKind>({ kind: 'nul' }, { kind: 'late-bom' }, { kind: 'many-faults' }) },
  { weight: 1, arbitrary: fc.constantFrom<LineKind>({ kind: 'wrong-method' }, { kind: 'bad-url' }, { kind: 'no-custom-id' }, { kind: 'stream' }, { kind: 'other-model' }) },
  { weight: 1, arbitrary: fc.nat().map((pick): LineKind => ({ kind: 'duplicate', pick })) }
)

export const fileArb: fc.Arbitrary<FileSpec> = fc.record({
  bom: fc.boolean(),
  lines: fc.array(fc.record({ line: lineArb, crlf: fc.boolean() }), { maxLength: 30, size: 'medium' }),
  finalNewline: fc.boolean(),
  maxRequests: fc.oneof({ weight: 4, arbitrary: fc.constant(50000) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 20 }) }),
  maxReported: fc.oneof({ weight: 4, arbitrary: fc.constant(100) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 5 }) })
})

function request (fields: Record<string, unknown>, body: Record<string, unknown> = {}): Record<string, unknown> {
  return { custom_id: 'x', method: 'POST', url: CHAT_URL, ...fields, body: { model: 'm', messages: [{ role: 'user', content: 'hi' }], ...body } }
}

/** A valid request of exactly `bytes` bytes, padded with `pad` then 'x' (a pad char may not fit whole). */
function padded (id: string, bytes: number, pad: string): Buffer {
  const base = Buffer.from(JSON.stringify(request({ custom_id: id }, { messages: [{ role: 'user', content: '' }] })))
  let room = bytes - base.length
  let content = ''
  while (room >= Buffer.byteLength(pad)) { content += pad; room -= Buffer.byteLength(pad) }
  content += 'x'.repeat(Math.max(0, room))
  return Buffer.from(JSON.stringify(request({ custom_id: id }, { messages: [{ role: 'user', content }] })))
}

/** The file's bytes and the verdict the rules give for it. */
export function assemble (spec: FileSpec): { bytes: Buffer, expected: Expected } {
  const out: Buffer[] = spec.bom ? [Buffer.from([0xef, 0xbb, 0xbf])] : []
  const errors: Expected['errors'] = []
  const warnings: Expected['warnings'] = []
  const ids: string[] = []
  let firstModel: string | null = null
  let requests = 0
  let blanks: number[] = []
  spec.lines.forEach(({ line, crlf }, index) => {
    const n = index + 1
    const fresh = `id-${n}`
    let bytes: Buffer
    // What the line yields once it is a request: its own errors, the id it registers, its model.
    let own: Expected['errors'] = []
    let registers: string | null = null
    let model: string | null = null
    switch (line.kind) {
      case 'valid': bytes = Buffer.from(JSON.stringify(request({ custom_id: fresh }, { messages: [{ role: 'user', content: line.text }] }))); registers = fresh; model = 'm'; break
      case 'padded': bytes = padded(fresh, MAX_LINE + line.delta, line.pad); registers = fresh; model = 'm'; break
      case 'blank': bytes = Buffer.from(line.text); break
      case 'bad-json': bytes = Buffer.from(line.text); own = [['invalid_json_line', n, null]]; break
      case 'not-object': bytes = Buffer.from(line.text); own = [['invalid_json_line', n, null]]; break
      case 'bad-utf8': {
        const valid = Buffer.from(JSON.stringify(request({ custom_id: fresh }, { messages: [{ role: 'user', content: 'abcdef' }] })))
        const at = valid.indexOf('abcdef') + (line.at % 7)
        bytes = Buffer.concat([valid.subarray(0, at), Buffer.from(line.bytes), valid.subarray(at)])
        own = [['invalid_encoding', n, null]]
        break
      }
      case 'nul': bytes = Buffer.concat([Buffer.from('{"custom_id":"a'), Buffer.from([0]), Buffer.from('b"}')]); own = [['invalid_json_line', n, null]]; break
      case 'late-bom':
        bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(request({ custom_id: fresh })))])
        // On line 1 of a file without a BOM this one is the file's BOM: the request is valid.
        if (n === 1 && !spec.bom) {
          registers = fresh
          model = 'm'
        } else {
          own = [['invalid_json_line', n, null]]
        }
        break
      case 'wrong-method': bytes = Buffer.from(JSON.stringify(request({ custom_id: fresh, method: 'GET' }))); own = [['invalid_method', n, 'method']]; registers = fresh; model = 'm'; break
      case 'bad-url': bytes = Buffer.from(JSON.stringify(request({ custom_id: fresh, url: '/v1/nope' }))); own = [['invalid_url', n, 'url']]; registers = fresh; model = 'm'; break
      case 'no-custom-id': bytes = Buffer.from(JSON.stringify({ ...request({}), custom_id: undefined })); own = [['missing_required_parameter', n, 'custom_id']]; model = 'm'; break
      case 'stream': bytes = Buffer.from(JSON.stringify(request({ custom_id: fresh }, { stream: true }))); own = [['streaming_unsupported', n, 'body.stream']]; registers = fresh; model = 'm'; break
      case 'other-model': bytes = Buffer.from(JSON.stringify(request({ custom_id: fresh }, { model: 'm2' }))); registers = fresh; model = 'm2'; break
      case 'many-faults':
        bytes = Buffer.from(JSON.stringify({ method: 'PUT', url: 5, body: { model: 'm', messages: [] } }))
        own = [['missing_required_parameter', n, 'custom_id'], ['invalid_method', n, 'method'], ['invalid_url', n, 'url']]
        model = 'm'
        break
      case 'duplicate': {
        const first = ids.length === 0 ? undefined : ids[line.pick % ids.length]
        const id = first ?? fresh
        bytes = Buffer.from(JSON.stringify(request({ custom_id: id })))
        if (first === undefined) registers = fresh
        else own = [['duplicate_custom_id', n, 'custom_id']]
        model = 'm'
        break
      }
    }
    out.push(bytes)
    const last = index === spec.lines.length - 1
    if (!last || spec.finalNewline) out.push(Buffer.from(crlf ? '\r\n' : '\n'))
    // The limit counts neither the line end nor the file's BOM.
    const length = line.kind === 'late-bom' && n === 1 && !spec.bom ? bytes.length - 3 : bytes.length
    if (line.kind === 'blank' && length <= MAX_LINE) {
      blanks.push(n)
      return
    }
    for (const b of blanks) errors.push(['empty_line', b, null])
    blanks = []
    requests++
    if (requests === spec.maxRequests + 1) errors.push(['too_many_tasks', n, null])
    if (length > MAX_LINE) {
      errors.push(['line_too_large', n, null])
      return
    }
    errors.push(...own)
    // Ids of requests past the limit are compared with the recorded ones, never recorded.
    if (registers !== null && requests <= spec.maxRequests) ids.push(registers)
    if (model !== null) {
      if (firstModel === null) firstModel = model
      else if (model !== firstModel) warnings.push(['model_mismatch', n, 'body.model'])
    }
  })
  if (requests === 0) errors.push(['empty_file', null, null])
  return { bytes: Buffer.concat(out), expected: { errors, warnings, requests } }
}
