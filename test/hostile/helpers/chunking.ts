import fc from 'fast-check'

// `size` is set on every array: fast-check's default ('small') never draws more than about
// ten elements, whatever maxLength says.

/**
 * How an input is cut into chunks: cut points drawn independently of the input (taken
 * modulo its length + 1, so repeated points give empty chunks, which the splitter must
 * also take), or one byte per chunk, the worst case for state carried across pushes.
 */
export type Chunking = { kind: 'cuts', cuts: number[] } | { kind: 'bytes' }

export const chunkingArb: fc.Arbitrary<Chunking> = fc.oneof(
  { weight: 6, arbitrary: fc.array(fc.nat(), { maxLength: 24, size: 'medium' }).map((cuts): Chunking => ({ kind: 'cuts', cuts })) },
  { weight: 1, arbitrary: fc.constant<Chunking>({ kind: 'bytes' }) }
)

/** The input cut as `chunking` says; each chunk is a copy, as a socket would hand them over. */
export function chunk (input: Buffer, chunking: Chunking): Buffer[] {
  if (chunking.kind === 'bytes') return [...input].map((b) => Buffer.from([b]))
  const points = chunking.cuts.map((c) => c % (input.length + 1)).sort((a, b) => a - b)
  const chunks: Buffer[] = []
  let start = 0
  for (const point of [...points, input.length]) {
    chunks.push(Buffer.from(input.subarray(start, point)))
    start = point
  }
  return chunks
}

/** Bytes that matter to a line splitter and a JSON validator, drawn often; any byte sometimes. */
const interestingByte = fc.constantFrom(0x0a, 0x0d, 0xef, 0xbb, 0xbf, 0x20, 0x09, 0x7b, 0x7d, 0x22, 0x3a, 0x00, 0xc0, 0xed, 0xa0, 0x80)
const anyByte = fc.integer({ min: 0, max: 255 })

/** Arbitrary byte arrays, biased towards line ends, BOM bytes, JSON punctuation and bad UTF-8 leads. */
export const bytesArb: fc.Arbitrary<Buffer> = fc.tuple(
  fc.boolean(),
  fc.array(fc.oneof({ weight: 2, arbitrary: interestingByte }, { weight: 3, arbitrary: anyByte }), { maxLength: 600, size: 'large' })
).map(([bom, bytes]) => Buffer.concat([bom ? Buffer.from([0xef, 0xbb, 0xbf]) : Buffer.alloc(0), Buffer.from(bytes)]))

/** fast-check's run settings: bounded runs, and FC_SEED to replay a reported failure. */
export function runs (numRuns: number): fc.Parameters<unknown> {
  const seed = process.env.FC_SEED
  return seed === undefined || seed === '' ? { numRuns } : { numRuns, seed: Number(seed) }
}
