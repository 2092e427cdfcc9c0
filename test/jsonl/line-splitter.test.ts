import t from 'tap'
import { Buffer } from 'node:buffer'
import { LineSplitter, kPendingBytes } from '../../src/jsonl/line-splitter.js'

interface Split {
  lines: Array<[number, string]>
  oversized: number[]
}

function run (chunks: Buffer[], maxLineBytes = 1024): Split {
  const out: Split = { lines: [], oversized: [] }
  const splitter = new LineSplitter({
    maxLineBytes,
    onLine: (line, n) => out.lines.push([n, line.toString('latin1')]),
    onOversizedLine: (n) => out.oversized.push(n)
  })
  for (const chunk of chunks) splitter.push(chunk)
  splitter.end()
  return out
}

function bytesOf (latin1: string): Buffer {
  return Buffer.from(latin1, 'latin1')
}

/** Lines as latin1 strings, so multi-byte UTF-8 is compared byte for byte. */
function l (utf8: string): string {
  return Buffer.from(utf8, 'utf8').toString('latin1')
}

const BOM = '\xef\xbb\xbf'
const cases: Array<{ name: string, input: Buffer, expected: Array<[number, string]> }> = [
  { name: 'LF', input: Buffer.from('a\nbb\nccc\n'), expected: [[1, 'a'], [2, 'bb'], [3, 'ccc']] },
  { name: 'CRLF', input: Buffer.from('a\r\nbb\r\n'), expected: [[1, 'a'], [2, 'bb']] },
  { name: 'mixed ends, no final newline', input: Buffer.from('a\r\nb\nc'), expected: [[1, 'a'], [2, 'b'], [3, 'c']] },
  { name: 'BOM', input: bytesOf(BOM + 'x\ny\n'), expected: [[1, 'x'], [2, 'y']] },
  { name: 'BOM only', input: bytesOf(BOM), expected: [] },
  { name: 'BOM then CRLF', input: bytesOf(BOM + '\r\nz'), expected: [[1, ''], [2, 'z']] },
  { name: 'partial BOM is data', input: bytesOf('\xef\xbbq\n'), expected: [[1, '\xef\xbbq']] },
  { name: 'BOM on a later line is kept', input: bytesOf('a\n' + BOM + 'b'), expected: [[1, 'a'], [2, BOM + 'b']] },
  { name: 'multi-byte UTF-8', input: Buffer.from('é😀\r\n€\n😀'), expected: [[1, l('é😀')], [2, l('€')], [3, l('😀')]] },
  { name: 'empty lines counted', input: Buffer.from('\n\na\n\r\n\nb\n\n'), expected: [[1, ''], [2, ''], [3, 'a'], [4, ''], [5, ''], [6, 'b'], [7, '']] },
  { name: 'lone CR inside a line is data', input: Buffer.from('a\rb\r\r\n'), expected: [[1, 'a\rb\r']] },
  { name: 'empty input', input: Buffer.alloc(0), expected: [] },
  { name: 'single newline', input: Buffer.from('\n'), expected: [[1, '']] },
  { name: 'final CR without LF', input: Buffer.from('a\nb\r'), expected: [[1, 'a'], [2, 'b']] }
]

t.test('lines and numbers do not depend on chunk boundaries', async (t) => {
  for (const { name, input, expected } of cases) {
    t.strictSame(run([input]), { lines: expected, oversized: [] }, `${name}: one chunk`)
    for (let i = 0; i <= input.length; i++) {
      const got = run([input.subarray(0, i), input.subarray(i)])
      t.strictSame(got.lines, expected, `${name}: split at ${i}`)
    }
    for (let i = 0; i <= input.length; i++) {
      for (let j = i; j <= input.length; j++) {
        const got = run([input.subarray(0, i), input.subarray(i, j), input.subarray(j)])
        if (JSON.stringify(got.lines) !== JSON.stringify(expected)) t.fail(`${name}: split at ${i} and ${j}`)
      }
    }
    const bytes = [...input].map((b) => Buffer.from([b]))
    t.strictSame(run(bytes).lines, expected, `${name}: 1-byte chunks`)
    t.strictSame(run(bytes.flatMap((b) => [Buffer.alloc(0), b])).lines, expected, `${name}: with empty chunks`)
  }
})

t.test('bytes counts everything pushed, BOM and line ends included', async (t) => {
  const splitter = new LineSplitter({ maxLineBytes: 10, onLine: () => {}, onOversizedLine: () => {} })
  splitter.push(bytesOf(BOM))
  splitter.push(Buffer.from('ab\r\n'))
  splitter.push(Buffer.from('c'))
  splitter.end()
  t.equal(splitter.bytes, 8)
})

t.test('a line inside one chunk is a view of that chunk, not a copy', async (t) => {
  const chunk = Buffer.from('{"a":1}\n{"b":2}\r\n')
  const seen: Buffer[] = []
  const splitter = new LineSplitter({ maxLineBytes: 100, onLine: (line) => seen.push(line), onOversizedLine: () => t.fail('oversized') })
  splitter.push(chunk)
  splitter.end()
  t.equal(seen.length, 2)
  for (const line of seen) t.equal(line.buffer, chunk.buffer, 'shares the chunk memory')
  t.equal(seen[1]?.byteOffset, chunk.byteOffset + 8)
})

t.test('the byte limit excludes the line end and the BOM, exactly at the boundary', async (t) => {
  const max = 8
  const fits = 'x'.repeat(max)
  const tooLong = 'y'.repeat(max + 1)
  const input = bytesOf(`${BOM}${fits}\r\n${tooLong}\n${fits}\n${tooLong}\r\n${fits}\r${fits}\n${fits}`)
  const expected = { lines: [[1, fits], [3, fits], [6, fits]], oversized: [2, 4, 5] }
  t.strictSame(run([input], max), expected, 'one chunk')
  for (let i = 0; i <= input.length; i++) {
    t.strictSame(run([input.subarray(0, i), input.subarray(i)], max), expected, `split at ${i}`)
  }
  t.strictSame(run([...input].map((b) => Buffer.from([b])), max), expected, '1-byte chunks')
})

t.test('an oversized final line without a newline is reported once', async (t) => {
  const input = Buffer.from('ok\n' + 'z'.repeat(50))
  t.strictSame(run([input], 10), { lines: [[1, 'ok']], oversized: [2] })
  t.strictSame(run([...input].map((b) => Buffer.from([b])), 10), { lines: [[1, 'ok']], oversized: [2] })
})

t.test('an oversized line is reported once and never buffered', async (t) => {
  const max = 1024 * 1024
  const chunkSize = 64 * 1024
  const lines: Array<[number, string]> = []
  const oversized: number[] = []
  const splitter = new LineSplitter({
    maxLineBytes: max,
    onLine: (line, n) => lines.push([n, line.toString()]),
    onOversizedLine: (n) => oversized.push(n)
  })
  splitter.push(Buffer.from('first\n\n'))
  let maxPending = 0
  const total = 10 * 1024 * 1024
  for (let sent = 0; sent < total; sent += chunkSize) {
    splitter.push(Buffer.alloc(chunkSize, 0x61))
    maxPending = Math.max(maxPending, splitter[kPendingBytes])
  }
  t.ok(maxPending <= max + 1, `pending bytes peaked at ${maxPending}`)
  t.equal(splitter[kPendingBytes], 0, 'nothing held once the line is known to be too long')
  splitter.push(Buffer.from('aaa\nafter\r\nlast'))
  splitter.end()
  t.strictSame(oversized, [3])
  t.strictSame(lines, [[1, 'first'], [2, ''], [4, 'after'], [5, 'last']])
})

t.test('a line just under the limit spanning many chunks is assembled whole', async (t) => {
  const max = 1000
  const line = Buffer.alloc(max, 0x62)
  const input = Buffer.concat([line, Buffer.from('\r\n'), line])
  const chunks: Buffer[] = []
  for (let i = 0; i < input.length; i += 7) chunks.push(input.subarray(i, i + 7))
  const got = run(chunks, max)
  t.strictSame(got.oversized, [])
  t.strictSame(got.lines.map(([n, s]) => [n, s.length]), [[1, max], [2, max]])
})

t.test('push or end after end throws', async (t) => {
  const splitter = new LineSplitter({ maxLineBytes: 10, onLine: () => {}, onOversizedLine: () => {} })
  splitter.end()
  t.throws(() => splitter.push(Buffer.from('a')), /after end/)
  t.throws(() => splitter.end(), /twice/)
})
