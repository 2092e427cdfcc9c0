/**
 * The validator alone, against its CPU floor (read + split + JSON.parse), on the bench's
 * generated data: the quick loop for optimising src/jsonl and for profiling it.
 *
 *   node --expose-gc --import tsx bench/validator.ts [--size-mb 200] [--shape short|long] [--runs 3] [--data-dir DIR]
 *   node --expose-gc --cpu-prof --cpu-prof-dir bench/out/profiles --import tsx bench/validator.ts --runs 1
 *
 * --expose-gc lets it report what the finished validator retains (the custom_id set).
 */
import { mkdir } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { parseFloor, validatorAlone } from './lib/baselines.js'
import { batchFile, type Shape } from './lib/data.js'
import { median, MiB, mibPerSecond } from './lib/stats.js'

const { values } = parseArgs({
  options: {
    'size-mb': { type: 'string', default: '200' },
    shape: { type: 'string', default: 'short' },
    runs: { type: 'string', default: '3' },
    'data-dir': { type: 'string', default: 'bench/out/data' }
  }
})
const shape: Shape = values.shape === 'long' ? 'long' : 'short'
const dir = values['data-dir']
await mkdir(dir, { recursive: true })
const data = await batchFile(dir, shape, Number(values['size-mb']) * MiB)
const floor: number[] = []
const validator: number[] = []
const floorCpu: number[] = []
const validatorCpu: number[] = []
let retained: number | null = null
for (let run = 0; run < Number(values.runs); run++) {
  const f = await parseFloor(data.path)
  floor.push(mibPerSecond(f.bytes, f.ms))
  floorCpu.push(mibPerSecond(f.bytes, f.cpuMs))
  const v = await validatorAlone(data.path, data.requests + 1)
  if (!v.valid) throw new Error('the generated file should be valid')
  validator.push(mibPerSecond(v.bytes, v.ms))
  validatorCpu.push(mibPerSecond(v.bytes, v.cpuMs))
  retained = v.retainedBytes
}
const fmt = (n: number): string => n.toFixed(1)
console.log(JSON.stringify({
  shape,
  mib: fmt(data.bytes / MiB),
  requests: data.requests,
  floorMiBps: fmt(median(floor)),
  validatorMiBps: fmt(median(validator)),
  ratio: (median(validator) / median(floor)).toFixed(2),
  // Per CPU second of this process: steadier than wall time on a busy machine.
  floorMiBperCpuS: fmt(median(floorCpu)),
  validatorMiBperCpuS: fmt(median(validatorCpu)),
  cpuRatio: (median(validatorCpu) / median(floorCpu)).toFixed(2),
  retainedMiB: retained === null ? 'run with --expose-gc' : fmt(retained / MiB),
  samples: { floor: floor.map(fmt), validator: validator.map(fmt) }
}))
