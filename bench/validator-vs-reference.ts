/**
 * BatchValidator (the byte scanner) against the JSON.parse reference it must agree with
 * (test/jsonl/helpers/reference-validator.ts), alternating in one process on one file in
 * memory, in MB per CPU second: on a shared machine the ratio of neighbours is steadier
 * than wall-time figures taken minutes apart.
 *
 *   node --import tsx bench/validator-vs-reference.ts bench/out/data/batch-short-209715200.jsonl [rounds]
 *
 * (bench/validator.ts writes the data files.)
 */
import { readFileSync } from 'node:fs'
import { BatchValidator, DEFAULT_BATCH_URLS } from '../src/jsonl/batch-validator.js'
import { ReferenceValidator } from '../test/jsonl/helpers/reference-validator.js'

const file = process.argv[2]
if (file === undefined) throw new Error('usage: bench/validator-vs-reference.ts FILE [rounds]')
const rounds = Number(process.argv[3] ?? '5')
const data = readFileSync(file)
const chunks: Buffer[] = []
for (let i = 0; i < data.length; i += 65536) chunks.push(data.subarray(i, i + 65536))
const opts = { maxRequests: 1e8, maxLineBytes: 6 * 1024 * 1024, allowedUrls: DEFAULT_BATCH_URLS, modelPolicy: 'warn' as const }
for (let r = 0; r < rounds; r++) {
  const out: string[] = []
  for (const [name, V] of [['scanner', BatchValidator], ['reference', ReferenceValidator]] as const) {
    const validator = new V(opts)
    const cpu = process.cpuUsage()
    for (const c of chunks) validator.write(c)
    const result = validator.end()
    const ms = process.cpuUsage(cpu).user / 1000
    out.push(`${name} ${(data.length / 1e6 / ms * 1000).toFixed(0)} MB/cpu-s${result.valid ? '' : ' (invalid)'}`)
  }
  console.log(out.join('  '))
}
