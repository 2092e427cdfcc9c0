import { createHash, randomBytes, randomInt } from 'node:crypto'

/** What a soak upload sends, and the answer it must get. */
export interface SoakUpload {
  kind: 'batch' | 'invalid' | 'user_data'
  purpose: 'batch' | 'user_data'
  filename: string
  content: Buffer
  sha256: string
  /** For invalid batch files: the one error expected, as [code, line]. */
  expectedError?: [string, number]
}

let serial = 0

function line (id: string, i: number): string {
  return JSON.stringify({
    custom_id: id,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'soak-model', messages: [{ role: 'user', content: `request ${i}: ${'é€'.repeat(i % 7)}` }] }
  })
}

/** One bad line a client might send, and the code it must be refused with. */
const FAULTS: Array<{ code: string, make: (id: string) => Buffer }> = [
  { code: 'invalid_json_line', make: (id) => Buffer.from(`{"custom_id":"${id}","method":"POST"`) },
  { code: 'missing_required_parameter', make: () => Buffer.from('{"method":"POST","url":"/v1/chat/completions","body":{"model":"soak-model","messages":[{"role":"user","content":"x"}]}}') },
  { code: 'invalid_method', make: (id) => Buffer.from(line(id, 0).replace('"POST"', '"GET"')) },
  { code: 'invalid_encoding', make: (id) => Buffer.concat([Buffer.from(line(id, 0).slice(0, 30)), Buffer.from([0xc0, 0xaf]), Buffer.from(line(id, 0).slice(30))]) },
  { code: 'streaming_unsupported', make: (id) => Buffer.from(line(id, 0).replace('"model":"soak-model"', '"model":"soak-model","stream":true')) }
]

// Random bytes are drawn once; each user_data file is a slice of them behind a unique header.
const POOL = randomBytes(1024 * 1024)

function finish (upload: Omit<SoakUpload, 'sha256'>): SoakUpload {
  return { ...upload, sha256: createHash('sha256').update(upload.content).digest('hex') }
}

/** A valid batch file of 1–300 lines, LF or CRLF. */
export function validBatch (): SoakUpload {
  const n = ++serial
  const count = randomInt(1, 301)
  const end = n % 3 === 0 ? '\r\n' : '\n'
  const lines = Array.from({ length: count }, (_, i) => line(`s${n}-${i}`, i))
  return finish({ kind: 'batch', purpose: 'batch', filename: `soak-${n}.jsonl`, content: Buffer.from(lines.join(end) + end) })
}

/** A batch file with exactly one bad line, at a random place. */
export function invalidBatch (): SoakUpload {
  const n = ++serial
  const count = randomInt(1, 200)
  const bad = randomInt(0, count)
  const fault = FAULTS[n % FAULTS.length] ?? FAULTS[0]!
  const lines = Array.from({ length: count }, (_, i) => (i === bad ? fault.make(`s${n}-${i}`) : Buffer.from(line(`s${n}-${i}`, i))))
  const content = Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]))
  return finish({ kind: 'invalid', purpose: 'batch', filename: `bad-${n}.jsonl`, content, expectedError: [fault.code, bad + 1] })
}

/** Opaque bytes, 1 KiB to 512 KiB. */
export function userData (): SoakUpload {
  const n = ++serial
  const size = randomInt(1024, 512 * 1024)
  const offset = randomInt(0, POOL.length - size)
  const content = Buffer.concat([Buffer.from(`soak file ${n}\n`), POOL.subarray(offset, offset + size)])
  return finish({ kind: 'user_data', purpose: 'user_data', filename: `data-${n}.bin`, content })
}
