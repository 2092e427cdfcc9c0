/**
 * `node --import tsx bench/offload.ts`: where a worker starts to pay for one upload's
 * check (OFFLOAD_MIN_BYTES in src/upload/upload-file.ts). For files of each size, the
 * same check (validate + SHA-256) inline and in a pool of one worker: wall time per
 * file (what the client waits) and the event loop's CPU per file (what other uploads
 * and requests lose). Medians of many files per size.
 */
import { Buffer } from 'node:buffer'
import { performance } from 'node:perf_hooks'
import { DEFAULT_BATCH_URLS } from '../src/jsonl/batch-validator.js'
import { CheckPool, type UploadCheck } from '../src/upload/check-pool.js'
import { inlineCheck } from '../src/upload/inline-check.js'

const options = { maxRequests: 1_000_000, maxLineBytes: 6 * 1024 * 1024, allowedUrls: DEFAULT_BATCH_URLS, modelPolicy: 'warn' as const }
const line = (i: number): string => JSON.stringify({
  custom_id: `request-${i}`, method: 'POST', url: '/v1/chat/completions',
  body: { model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'user', content: `Question number ${i}: ${'lorem ipsum '.repeat(20)}` }] }
})

function fileOf (bytes: number): Buffer[] {
  const lines: string[] = []
  let size = 0
  for (let i = 0; size < bytes; i++) {
    const l = line(i)
    lines.push(l)
    size += l.length + 1
  }
  const all = Buffer.from(lines.join('\n') + '\n')
  return Array.from({ length: Math.ceil(all.length / 65536) }, (_, i) => all.subarray(i * 65536, (i + 1) * 65536))
}

async function run (check: UploadCheck, chunks: Buffer[]): Promise<void> {
  for (const chunk of chunks) {
    const wait = check.write(chunk)
    if (wait !== undefined) await wait
  }
  const result = await check.end()
  if (result.validation?.valid !== true) throw new Error('the file should be valid')
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN

const pool = new CheckPool({ size: 1 })
await pool.sessions()
console.log('size      inline wall  pooled wall  inline loop-CPU  pooled loop-CPU   (ms per file, medians)')
for (const kib of [4, 16, 64, 128, 256, 512, 1024, 4096]) {
  const chunks = fileOf(kib * 1024)
  const files = Math.max(5, Math.min(200, Math.floor(20_000 / kib)))
  const sides = { inline: { wall: [] as number[], cpu: [] as number[] }, pooled: { wall: [] as number[], cpu: [] as number[] } }
  for (let i = 0; i < files + 3; i++) {
    for (const side of ['inline', 'pooled'] as const) {
      // process.cpuUsage counts every thread: the event loop's share is its busy time.
      const c0 = performance.eventLoopUtilization()
      const t0 = performance.now()
      await run(side === 'inline' ? inlineCheck(options) : pool.open(options) as UploadCheck, chunks)
      const wall = performance.now() - t0
      const elu = performance.eventLoopUtilization(c0)
      if (i < 3) continue
      sides[side].wall.push(wall)
      // Busy time of the event loop during this file (not idle waiting for the worker).
      sides[side].cpu.push(elu.active)
    }
  }
  const f = (n: number): string => n.toFixed(3).padStart(11)
  console.log(`${String(kib).padStart(5)} KiB ${f(median(sides.inline.wall))}  ${f(median(sides.pooled.wall))}  ${f(median(sides.inline.cpu))}      ${f(median(sides.pooled.cpu))}`)
}
await pool.close()
