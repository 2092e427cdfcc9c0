/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`, e.g. `npm run bench -- --cpu-prof`)
 * by self time per function, so a profile can be read in a terminal or pasted in a report.
 *
 *   node --import tsx bench/profile-summary.ts PROFILE.cpuprofile [--top 25] [--filter TEXT]
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { parseArgs } from 'node:util'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  children?: number[]
}

interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' }, filter: { type: 'string' } }
})
const file = positionals[0]
if (file === undefined) throw new Error('usage: profile-summary.ts PROFILE.cpuprofile [--top N] [--filter TEXT]')
const profile = JSON.parse(await readFile(file, 'utf8')) as Profile

const byId = new Map(profile.nodes.map((node) => [node.id, node]))
const selfMicros = new Map<number, number>()
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i]!
  selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
}

// One row per function (name + file + line), however many call paths reached it.
const rows = new Map<string, number>()
let total = 0
for (const [id, micros] of selfMicros) {
  const frame = byId.get(id)?.callFrame
  if (frame === undefined) continue
  total += micros
  const where = frame.url === '' ? '' : ` ${path.basename(frame.url)}:${frame.lineNumber + 1}`
  const key = `${frame.functionName === '' ? '(anonymous)' : frame.functionName}${where}`
  rows.set(key, (rows.get(key) ?? 0) + micros)
}
const filter = values.filter
const sorted = [...rows].filter(([key]) => filter === undefined || key.includes(filter)).sort((a, b) => b[1] - a[1])
console.log(`total sampled: ${(total / 1e6).toFixed(2)} s`)
for (const [key, micros] of sorted.slice(0, Number(values.top))) {
  console.log(`${(100 * micros / total).toFixed(1).padStart(5)}%  ${(micros / 1000).toFixed(0).padStart(7)} ms  ${key}`)
}
