import fc from 'fast-check'
import t from 'tap'
import { LineSplitter, kPendingBytes } from '../../src/jsonl/line-splitter.js'
import { bytesArb, chunk, chunkingArb, runs } from './helpers/chunking.js'

interface Split {
  lines: Array<[number, string]>
  oversized: number[]
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf])

/**
 * The model: the whole input split at once, as the README states the rules. Line 1 loses
 * a leading BOM; lines end at '\n'; one '\r' before it (or at the very end) is not part
 * of the line; the text after the last '\n' is a line unless empty; a line longer than
 * `max` bytes is reported, not emitted.
 */
function reference (input: Buffer, max: number): Split {
  const body = input.subarray(0, 3).equals(BOM) ? input.subarray(3) : input
  const out: Split = { lines: [], oversized: [] }
  const pieces: Buffer[] = []
  let start = 0
  for (let i = body.indexOf(10); i !== -1; i = body.indexOf(10, start)) {
    pieces.push(body.subarray(start, i))
    start = i + 1
  }
  if (start < body.length) pieces.push(body.subarray(start))
  pieces.forEach((piece, index) => {
    const line = piece.length > 0 && piece[piece.length - 1] === 13 ? piece.subarray(0, -1) : piece
    if (line.length > max) out.oversized.push(index + 1)
    else out.lines.push([index + 1, line.toString('hex')])
  })
  return out
}

/** The splitter fed `chunks`, through `onLine` or `onLineRange`; checks it never holds an oversized line. */
function split (chunks: Buffer[], max: number, ranges: boolean): Split & { peak: number } {
  const out: Split & { peak: number } = { lines: [], oversized: [], peak: 0 }
  const onOversizedLine = (n: number): void => { out.oversized.push(n) }
  const splitter = ranges
    ? new LineSplitter({ maxLineBytes: max, onLineRange: (buf, s, e, n) => out.lines.push([n, buf.toString('hex', s, e)]), onOversizedLine })
    : new LineSplitter({ maxLineBytes: max, onLine: (line, n) => out.lines.push([n, line.toString('hex')]), onOversizedLine })
  for (const c of chunks) {
    splitter.push(c)
    out.peak = Math.max(out.peak, splitter[kPendingBytes])
  }
  splitter.end()
  return out
}

const maxArb = fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 9, max: 700 }))

/** Lines of 'a'/'é'/'😀' near a limit, with LF or CRLF ends, so both sides of the boundary are hit. */
const nearLimitArb = fc.integer({ min: 1, max: 64 }).chain((max) => fc.record({
  max: fc.constant(max),
  bom: fc.boolean(),
  lines: fc.array(fc.record({
    length: fc.integer({ min: Math.max(0, max - 3), max: max + 3 }),
    fill: fc.constantFrom('a', 'é', '😀'),
    end: fc.constantFrom('\n', '\r\n', '\r', '')
  }), { maxLength: 12, size: 'medium' })
})).map(({ max, bom, lines }) => {
  const body = lines.map(({ length, fill, end }) => {
    const unit = Buffer.from(fill)
    const bytes = Buffer.alloc(length)
    for (let i = 0; i < length; i++) bytes[i] = unit[i % unit.length]!
    // '' and a bare '\r' glue lines together: still one input, whatever it means.
    return Buffer.concat([bytes, Buffer.from(end)])
  })
  return { max, input: Buffer.concat([bom ? BOM : Buffer.alloc(0), ...body]) }
})

let propertyRuns = 0
const count = <T extends unknown[]>(fn: (...args: T) => boolean) => (...args: T): boolean => { propertyRuns++; return fn(...args) }

t.test('model: any bytes, any chunking, either callback = the whole buffer split at once', async (t) => {
  fc.assert(fc.property(bytesArb, maxArb, chunkingArb, fc.boolean(), count((input, max, chunking, ranges) => {
    const got = split(chunk(input, chunking), max, ranges)
    const want = reference(input, max)
    if (JSON.stringify({ lines: got.lines, oversized: got.oversized }) !== JSON.stringify(want)) return false
    // Never more than the limit, one '\r' and an unfinished BOM held.
    return got.peak <= max + 1 + 2
  })), runs(1500))
  t.pass('1500 runs')
})

t.test('model: lines at the limit, ±3 bytes, multi-byte fills, every line end', async (t) => {
  fc.assert(fc.property(nearLimitArb, chunkingArb, fc.boolean(), count(({ max, input }, chunking, ranges) => {
    const got = split(chunk(input, chunking), max, ranges)
    return JSON.stringify({ lines: got.lines, oversized: got.oversized }) === JSON.stringify(reference(input, max)) && got.peak <= max + 3
  })), runs(1500))
  t.pass('1500 runs')
})

t.test('bytes counts every byte pushed, whatever the chunking', async (t) => {
  fc.assert(fc.property(bytesArb, chunkingArb, count((input, chunking) => {
    const splitter = new LineSplitter({ maxLineBytes: 16, onLine: () => {}, onOversizedLine: () => {} })
    for (const c of chunk(input, chunking)) splitter.push(c)
    splitter.end()
    return splitter.bytes === input.length
  })), runs(300))
  t.pass('300 runs')
})

t.test('property runs', async (t) => {
  t.equal(propertyRuns, 3300, `${propertyRuns} splitter property runs`)
})
