import { Buffer } from 'node:buffer'
import fc from 'fast-check'
import t from 'tap'
import { chunk, chunkingArb, runs } from '../hostile/helpers/chunking.js'
import { assertSameVerdict, options } from './helpers/equivalence.js'

// Generated and mutated batch files: the byte scanner (BatchValidator) and the JSON.parse
// reference (helpers/reference-validator.ts) give the same whole result. Lines are built
// as text so that what JSON.stringify never writes is drawn too: escaped and duplicate
// keys (JSON.parse keeps the last), lone surrogates, odd whitespace, numbers at the edges,
// deep nesting; then bytes are flipped, cut, inserted and deleted.

// JSON's whitespace mostly; sometimes what JSON.parse refuses as whitespace.
const ws = fc.oneof({ weight: 30, arbitrary: fc.constantFrom('', '', '', '', ' ', '\t', '\r', ' \r\t ') }, { weight: 1, arbitrary: fc.constantFrom('\u00a0', '\ufeff', '\f', '\u000b') })

/** A JSON string literal for `s`, with some characters written as escapes. */
function literal (s: string, escapeMask: number): string {
  let out = '"'
  let i = 0
  for (const ch of JSON.stringify(s).slice(1, -1).match(/\\u[0-9a-fA-F]{4}|\\.|[\s\S]/gu) ?? []) {
    const code = ch.length === 1 ? ch.charCodeAt(0) : -1
    if (code >= 0 && ((escapeMask >>> (i++ % 30)) & 1) === 1) {
      const hex = code.toString(16).padStart(4, '0')
      out += (i & 1) === 1 ? `\\u${hex}` : `\\u${hex.toUpperCase()}`
    } else {
      out += ch
    }
  }
  return out + '"'
}

const textArb = fc.oneof(
  fc.constantFrom('', 'a', 'm', 'm2', 'POST', 'post', 'user', 'system', 'assistant', 'tool', 'developer', 'function', 'admin',
    '/v1/chat/completions', '/v1/embeddings', '/v1/completions', '/v1/responses', '/v1/moderations', '/v1/nope',
    'custom_id', 'method', 'url', 'body', 'model', 'stream', 'messages', 'input', 'prompt', 'role', '__proto__',
    '\ud800', '\udc00', '\ud83d\ude00', 'é', '\ufffd', '\u2028', 'x'.repeat(513), '😀'.repeat(300), 'a\u0000b', '"\\/'),
  fc.string({ maxLength: 8, unit: 'binary' }),
  fc.string({ maxLength: 6, unit: 'grapheme' })
)
const stringArb = fc.tuple(textArb, fc.oneof(fc.constant(0), fc.constant(0), fc.nat())).map(([s, mask]) => literal(s, mask))
const numberArb = fc.oneof(
  fc.constantFrom('0', '-0', '1', '-1', '1e400', '-1e400', '1E-400', '0.5', '1.0e+2', '123456789012345678901234567890', '5e-324', '1.7976931348623157e308'),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n))
)
const deepArb = fc.constantFrom(998, 999, 1000, 1001, 1500).map((d) => '['.repeat(d) + ']'.repeat(d))
const scalarArb = fc.oneof(stringArb, numberArb, fc.constantFrom('true', 'false', 'null'))
// Near misses: what JSON.parse refuses although it looks like a value (a raw tab in a string included).
const nearMissArb = fc.constantFrom('01', '-01', '00', '1.', '-', '.5', '1e', '1e+', '+1', '0x1', 'NaN', 'Infinity', '-Infinity', 'tru', 'nulll', 'True',
  '[1,]', '[,1]', '{"a":1,}', '{,}', '{"a" 1}', '{"a":}', '[1 2]', "'a'", '"a\tb"', '"\u0000"', '"\u001f"', '"\\x41"', '"\\u12"', '"\\U0041"', '"\\ud800\\u12"', '"a', '[', '{')

/** Any JSON value, written with whitespace drawn from `ws`. */
const valueArb: fc.Arbitrary<string> = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true },
    { weight: 6, arbitrary: scalarArb },
    { weight: 1, arbitrary: deepArb },
    { weight: 1, arbitrary: nearMissArb },
    { weight: 2, arbitrary: fc.tuple(fc.array(fc.tuple(ws, tie('value'), ws), { maxLength: 3 })).map(([items]) => `[${items.map(([a, v, c]) => a + v + c).join(',')}]`) },
    { weight: 2, arbitrary: fc.array(fc.tuple(stringArb, ws, tie('value')), { maxLength: 3 }).map((members) => `{${members.map(([k, s, v]) => `${k}${s}:${s}${v}`).join(',')}}`) })
})).value

/** An object's text from [key, value] pairs (keys may repeat, as written). */
function object (members: ReadonlyArray<readonly [string, string]>, space: string): string {
  return `{${space}${members.map(([k, v]) => `${k}${space}:${space}${v}`).join(`,${space}`)}${space}}`
}

/** A key the rules read, plain mostly; sometimes escaped, so it only means that key once decoded. */
const keyArb = (name: string, wild: boolean): fc.Arbitrary<string> => wild
  ? fc.oneof({ weight: 8, arbitrary: fc.constant(JSON.stringify(name)) }, { weight: 1, arbitrary: fc.nat().map((m) => literal(name, m | 1)) })
  : fc.constant(JSON.stringify(name))

type Fields = ReadonlyArray<readonly [string, fc.Arbitrary<string>]>

/**
 * An object's members: the fields given, with their usual values; `wild`, any value
 * sometimes, a field missing or given twice sometimes; then a few other members, shuffled.
 */
function membersArb (fields: Fields, wild: boolean): fc.Arbitrary<Array<readonly [string, string]>> {
  const one = ([name, usual]: readonly [string, fc.Arbitrary<string>]) => fc.tuple(
    wild ? fc.oneof({ weight: 12, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(2) }) : fc.constant(1),
    fc.array(fc.tuple(keyArb(name, wild), wild ? fc.oneof({ weight: 8, arbitrary: usual }, { weight: 1, arbitrary: valueArb }) : usual), { minLength: 2, maxLength: 2 })
  ).map(([times, pairs]) => pairs.slice(0, times))
  return fc.tuple(
    fc.tuple(...fields.map(one)),
    fc.array(fc.tuple(stringArb, wild ? valueArb : scalarArb), { maxLength: 2 })
  ).chain(([known, others]) => fc.shuffledSubarray([...known.flat(), ...others], { minLength: known.flat().length + others.length }))
}

function requestArb (wild: boolean): fc.Arbitrary<string> {
  const pick = <T>(usual: fc.Arbitrary<T>, odd: fc.Arbitrary<T>, ratio = 8): fc.Arbitrary<T> => wild ? fc.oneof({ weight: ratio, arbitrary: usual }, { weight: 1, arbitrary: odd }) : usual
  const roleArb = pick(fc.constantFrom('"user"', '"system"', '"assistant"', '"tool"', '"developer"', '"function"'), scalarArb)
  const messageArb = pick(fc.tuple(membersArb([['role', roleArb], ['content', fc.constantFrom('"hi"', '""', '[{"type":"text","text":"x"}]')]], wild), ws).map(([m, s]) => object(m, s)), valueArb)
  const messagesArb = pick(fc.array(messageArb, { minLength: wild ? 0 : 1, maxLength: 3 }).map((list) => `[${list.join(',')}]`), valueArb)
  const urlArb = pick(fc.constant('"/v1/chat/completions"'), fc.oneof(fc.constantFrom('"/v1/embeddings"', '"/v1/completions"', '"/v1/responses"', '"/v1/other"'), stringArb), 5)
  const bodyArb = fc.tuple(membersArb([
    ['model', pick(fc.constantFrom('"m"', '"\\u006d"', '"m\\u00e9"'), fc.constantFrom('"m2"', '""', '"\\ud800"', '"\ufffd"'))],
    ['messages', messagesArb],
    ['input', fc.constantFrom('"x"', '["a","b"]')],
    ['prompt', pick(fc.constant('"x"'), fc.constant('null'))],
    ['stream', pick(fc.constantFrom('false', 'null', '"true"', '1'), fc.constant('true'))]
  ], wild), ws).map(([m, s]) => object(m, s))
  const idArb = pick(fc.integer({ min: 1, max: wild ? 12 : 1000000 }).map((n) => `"id-${n}"`), stringArb, 6)
  return fc.tuple(membersArb([
    ['custom_id', idArb],
    ['method', pick(fc.constantFrom('"POST"', '"\\u0050OST"'), fc.constantFrom('"GET"', 'null', '"post"'))],
    ['url', urlArb],
    ['body', pick(bodyArb, valueArb)]
  ], wild), ws, ws).map(([m, s, edge]) => edge + object(m, s) + edge)
}

// Mutations of a line's bytes: what a hand-edited or broken file holds.
const tokenArb = fc.constantFrom(',', '}', ']', '{', '[', '"', '\\', '\\u', '\\ud800', '\\x', '01', '1.', '-', '.5', '1e', '+1', '1e400',
  ',]', ',}', ':', 'tru', 'nul', ' ', '\t', '\r', '\u0000', '\u001f', '\u007f', '\ufeff', '\u2028', '"custom_id":"dup",', '"body":{},', '"role":"user",')
const rawBytesArb = fc.constantFrom([0xff], [0x80], [0xc0, 0xaf], [0xc2], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80], [0xf0, 0x8f, 0xbf, 0xbf], [0xef, 0xbf, 0xbf], [0xf8, 0x88, 0x80, 0x80, 0x80])
type Mutation = { kind: 'none' } | { kind: 'member', at: number, value: string } | { kind: 'escape-quote', at: number } | { kind: 'flip', at: number, bit: number } | { kind: 'cut', at: number } | { kind: 'insert', at: number, bytes: Buffer } | { kind: 'delete', at: number }
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 10, arbitrary: fc.constant<Mutation>({ kind: 'none' }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.oneof(tokenArb.map((s) => Buffer.from(s)), rawBytesArb.map((a) => Buffer.from(a))) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }) },
  // A backslash before one of the quotes: a closing quote escaped, the string then runs on (or to the end).
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('escape-quote' as const), at: fc.nat() }) },
  // A near miss as one more member of one of the line's objects, so the rest of the line stays clean.
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('member' as const), at: fc.nat(), value: fc.oneof(nearMissArb, nearMissArb.map((v) => `[${v}]`)) }) }
)

function mutate (line: Buffer, m: Mutation): Buffer {
  if (m.kind === 'none' || line.length === 0) return line
  const at = m.at % (line.length + 1)
  switch (m.kind) {
    case 'escape-quote': {
      const quotes = [...line.keys()].filter((i) => line[i] === 0x22)
      if (quotes.length === 0) return line
      // Often one of the last quotes: an escaped closing quote near the line's end.
      const i = (m.at & 1) === 0 ? quotes[m.at % quotes.length]! : quotes[Math.max(0, quotes.length - 1 - (m.at >> 1) % 3)]!
      return Buffer.concat([line.subarray(0, i), Buffer.from('\\'), line.subarray(i)])
    }
    case 'member': {
      const braces = [...line.keys()].filter((i) => line[i] === 0x7b)
      const i = braces.length === 0 ? 0 : braces[m.at % braces.length]! + 1
      return Buffer.concat([line.subarray(0, i), Buffer.from(`"zz":${m.value},`), line.subarray(i)])
    }
    case 'flip': {
      const out = Buffer.from(line)
      const i = m.at % line.length
      out[i] = out[i]! ^ (1 << m.bit)
      return out
    }
    case 'cut': return line.subarray(0, at)
    case 'insert': return Buffer.concat([line.subarray(0, at), m.bytes, line.subarray(at)])
    case 'delete': return Buffer.concat([line.subarray(0, at), line.subarray(at + 1)])
  }
}

const fileArb = fc.record({
  lines: fc.array(fc.tuple(fc.oneof({ weight: 3, arbitrary: requestArb(false) }, { weight: 1, arbitrary: requestArb(true) }), mutationArb, fc.constantFrom('\n', '\n', '\r\n', '\n', '\n\n')), { minLength: 1, maxLength: 6 }),
  policy: fc.constantFrom('warn' as const, 'reject' as const),
  maxRequests: fc.oneof({ weight: 4, arbitrary: fc.constant(50000) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 4 }) }),
  maxReported: fc.oneof({ weight: 4, arbitrary: fc.constant(100) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 }) }),
  maxLineBytes: fc.oneof({ weight: 6, arbitrary: fc.constant(1024 * 1024) }, { weight: 1, arbitrary: fc.integer({ min: 20, max: 300 }) }),
  urls: fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constant(['/v1/chat/completions', '/v1/other']) }),
  // Where the file starts in its ArrayBuffer: the scanner reads aligned 4-byte words.
  shift: fc.integer({ min: 0, max: 7 })
})

/** The bytes as one chunk starting `shift` bytes into a fresh ArrayBuffer. */
function shifted (bytes: Buffer, shift: number): Buffer {
  const whole = Buffer.from(new ArrayBuffer(bytes.length + shift))
  bytes.copy(whole, shift)
  return whole.subarray(shift)
}

t.test('generated and mutated files: the reference verdict, in any chunking', async (t) => {
  const stats = { lines: 0, clean: 0, valid: 0 }
  fc.assert(fc.property(fileArb, chunkingArb, (spec, chunking) => {
    const bytes = Buffer.concat(spec.lines.flatMap(([text, m, end]) => [mutate(Buffer.from(text), m), Buffer.from(end)]))
    const opts = options({
      modelPolicy: spec.policy, maxRequests: spec.maxRequests, maxReportedErrors: spec.maxReported, maxLineBytes: spec.maxLineBytes,
      ...(spec.urls === undefined ? {} : { allowedUrls: spec.urls })
    })
    const result = assertSameVerdict(chunk(bytes, chunking), opts)
    assertSameVerdict(shifted(bytes, spec.shift), opts)
    if (result.errorCount === result.errors.length) {
      stats.lines += result.requests
      stats.clean += result.requests - new Set(result.errors.map((e) => e.line)).size
    }
    if (result.valid) stats.valid++
  }), runs(1500))
  // Both sides of the verdict must be well represented, or the property proves little.
  t.ok(stats.clean > stats.lines / 8, `${stats.clean} request lines without an error of ${stats.lines} (files with every error reported)`)
  t.ok(stats.valid > 50 && stats.valid < 1400, `${stats.valid} valid files of 1500`)
})

t.test('valid lines written the way clients write them: the scanner path, the reference verdict', async (t) => {
  const cleanArb = fc.array(fc.record({
    id: fc.string({ minLength: 1, maxLength: 20, unit: 'binary' }),
    model: fc.constantFrom('m', 'gpt-4o-mini', 'm\u00e9', '\ud800'),
    content: fc.string({ maxLength: 40, unit: 'binary' }),
    role: fc.constantFrom('user', 'system', 'assistant', 'tool', 'developer', 'function'),
    extra: fc.jsonValue({ maxDepth: 3 })
  }), { minLength: 1, maxLength: 10 })
  fc.assert(fc.property(cleanArb, (reqs) => {
    const text = reqs.map((r) => JSON.stringify({ custom_id: r.id, method: 'POST', url: '/v1/chat/completions', body: { model: r.model, messages: [{ role: r.role, content: r.content }], extra: r.extra } })).join('\n')
    assertSameVerdict(text)
  }), runs(500))
  t.pass('500 runs')
})
