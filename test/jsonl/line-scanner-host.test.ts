import t from 'tap'
import { Buffer } from 'node:buffer'
import { BatchValidator } from '../../src/jsonl/batch-validator.js'
import { LineScanner, SCANNER_WHOLE_COPY_BYTES, scannerMaxBytes } from '../../src/jsonl/line-scanner.js'
import { assertSameVerdict, options } from './helpers/equivalence.js'

// The JavaScript side of the WebAssembly scanner (src/jsonl/line-scanner.ts): how bytes get
// into its memory (a buffer whole, or a line alone past SCANNER_WHOLE_COPY_BYTES) and
// back out as positions of the caller's buffer. A position off by the copy's offset shows
// as a wrong custom_id, url or model, so each case has lines that differ only there.

function line (id: string, url = '/v1/chat/completions', model = 'm', content = 'Hi'): string {
  return JSON.stringify({ custom_id: id, method: 'POST', url, body: { model, messages: [{ role: 'user', content }] } })
}

/** A file of `lines` requests with a duplicate id, a bad url and another model far into it. */
function file (lines: number): Buffer {
  const out: string[] = []
  for (let i = 1; i <= lines; i++) out.push(line(`id-${i}`))
  out.push(line('id-7'), line(`id-${lines + 1}`, '/v1/nope'), line(`id-${lines + 2}`, '/v1/chat/completions', 'other'))
  return Buffer.from(out.join('\n') + '\n')
}

function chunked (bytes: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = []
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size))
  return chunks
}

t.test('a buffer past the whole-copy size has each line copied alone, with the same verdict', async (t) => {
  const bytes = file(30_000)
  t.ok(bytes.length > SCANNER_WHOLE_COPY_BYTES, `${bytes.length} bytes`)
  const whole = assertSameVerdict(bytes)
  const small = assertSameVerdict(chunked(bytes, 65536))
  t.strictSame(whole, small)
  t.strictSame(whole.errors.map((e) => [e.code, e.line]), [['duplicate_custom_id', 30_001], ['invalid_url', 30_002]])
  t.strictSame(whole.models, { m: 30_002, other: 1 })
})

t.test('a line longer than the whole-copy size is scanned where it lies (the memory grows)', async (t) => {
  const long = line('long', '/v1/chat/completions', 'm', 'x'.repeat(SCANNER_WHOLE_COPY_BYTES + 500_000))
  const bytes = Buffer.from(`${line('a')}\n${long}\n${line('a')}\n${line('b', '/v1/nope')}\n`)
  const opts = options({ maxLineBytes: 2 * 1024 * 1024 })
  for (const size of [bytes.length, 65536, 1_000_003]) {
    const result = assertSameVerdict(chunked(bytes, size), opts)
    t.strictSame(result.errors.map((e) => [e.code, e.line]), [['duplicate_custom_id', 3], ['invalid_url', 4]], `chunks of ${size}`)
  }
})

t.test('validators that take turns on one thread share its scanner without mixing their lines', async (t) => {
  const a = file(3000)
  const b = Buffer.from(a.toString().replaceAll('"id-', '"other-').replace('/v1/nope', '/v1/embeddings'))
  const chunksA = chunked(a, 4096)
  const chunksB = chunked(b, 5000)
  const va = new BatchValidator(options())
  const vb = new BatchValidator(options())
  for (let i = 0; i < Math.max(chunksA.length, chunksB.length); i++) {
    if (i < chunksA.length) va.write(chunksA[i]!)
    if (i < chunksB.length) vb.write(chunksB[i]!)
  }
  t.strictSame(va.end(), assertSameVerdict(chunksA))
  t.strictSame(vb.end(), assertSameVerdict(chunksB))
})

t.test('the scanner reads only the bytes it is given, whatever lies past them in its memory', async (t) => {
  const scanner = new LineScanner(['user'])
  const text = Buffer.from(`${line('1')}${line('2')}`)
  const first = Buffer.byteLength(line('1'))
  // The whole buffer is copied in; a range that ends inside the second object is not a line.
  t.equal(scanner.scan(text, 0, first), true)
  t.equal(scanner.scan(text, 0, first - 1), false)
  t.equal(scanner.scan(text, first, text.length), true)
  t.equal(text.toString('latin1', scanner.starts[0], scanner.ends[0]), '2', 'custom_id, as a position of the caller\'s buffer')
  // A string left open at the end of the range, with a closing quote just past it.
  const open = Buffer.from('{"custom_id":"abc" ')
  t.equal(scanner.scan(open, 0, 16), false)
})

t.test('the bound memory-bound.ts counts covers the largest copy, in whole pages', async (t) => {
  t.equal(scannerMaxBytes(1024), 1024 * 1024 + 65536)
  t.equal(scannerMaxBytes(6 * 1024 * 1024), 6 * 1024 * 1024 + 65536)
  t.equal(scannerMaxBytes(6 * 1024 * 1024) % 65536, 0)
})
