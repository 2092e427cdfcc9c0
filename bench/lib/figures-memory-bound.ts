/**
 * The worst-case memory formula of docs/operations.md "Memory" (src/upload/memory-bound.ts) against
 * the service: MAX_CONCURRENT_UPLOADS uploads at once, each of the most distinct
 * custom_ids and of lines of BATCH_MAX_LINE_BYTES that JSON.parse makes the most of
 * (nested arrays), and the peak RSS growth they cause against the bound the formula
 * gives for those settings. Small settings keep it to seconds; the formula scales.
 */
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import path from 'node:path'
import { loadConfig } from '../../src/config.js'
import { replicaMemoryBound } from '../../src/upload/memory-bound.js'
import type { Log } from './figures-transfer.js'
import { deleteFile, upload } from './http.js'
import type { Figure } from './report.js'
import { peakRssDuring } from './figures-service.js'
import { startServer, type ServerOptions } from './server.js'

const MiB = 2 ** 20
const UPLOADS = 4
const LINE_BYTES = MiB
const LONG_LINES = 12
const SHORT_LINES = 100_000

const env = {
  MAX_CONCURRENT_UPLOADS: String(UPLOADS),
  BATCH_MAX_LINE_BYTES: String(LINE_BYTES),
  BATCH_MAX_REQUESTS: String(SHORT_LINES + LONG_LINES)
}

/** Distinct custom_ids first (the set full), then the longest lines of nested arrays. */
async function worstCaseFile (dir: string, index: number): Promise<string> {
  const file = path.join(dir, `memory-bound-${index}.jsonl`)
  if (await stat(file).then(() => true, () => false)) return file
  const out = createWriteStream(file)
  const request = (id: string, pad: string): string =>
    `{"custom_id":"${id}","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"hi"}]${pad}}}\n`
  let chunk = ''
  for (let i = 0; i < SHORT_LINES; i++) {
    chunk += request(`upload-${index}-request-${i}-${'x'.repeat(40)}`, '')
    if (chunk.length > MiB) {
      if (!out.write(chunk)) await once(out, 'drain')
      chunk = ''
    }
  }
  out.write(chunk)
  for (let i = 0; i < LONG_LINES; i++) {
    const head = request(`long-${index}-${i}`, ',"pad":')
    const depth = Math.floor((LINE_BYTES - head.length) / 2)
    out.write(head.slice(0, -3) + '['.repeat(depth) + ']'.repeat(depth) + '}}\n')
  }
  out.end()
  await once(out, 'finish')
  return file
}

export async function memoryBoundFigures (serverOptions: ServerOptions, dataDir: string, runs: number, log: Log): Promise<Figure[]> {
  const settings = loadConfig({ ...serverOptions.env, ...env })
  const bound = replicaMemoryBound(settings) ?? Number.NaN
  const files = await Promise.all(Array.from({ length: UPLOADS }, async (_, i) => await worstCaseFile(dataDir, i)))
  const growth: number[] = []
  const ratios: number[] = []
  for (let run = 0; run < runs; run++) {
    log(`memory bound run ${run + 1}/${runs}: ${UPLOADS} worst-case uploads at once`)
    const server = await startServer({ ...serverOptions, env: { ...serverOptions.env, ...env } })
    try {
      const { before, peak, result: stored } = await peakRssDuring(server, async () => await Promise.all(files.map(async (file) => await upload(server.url, file, 'batch'))))
      for (const file of stored) await deleteFile(server.url, file.id)
      growth.push((peak - before) / MiB)
      ratios.push((peak - before) / bound)
    } finally {
      await server.stop()
    }
  }
  const defaults = loadConfig({})
  return [{
    group: `worst-case memory formula (fs; ${UPLOADS} uploads of ${SHORT_LINES} distinct ids + ${LONG_LINES} lines of ${LINE_BYTES / MiB} MiB of nested arrays)`,
    name: 'peak RSS growth vs the formula\'s bound (docs/operations.md, "Memory")',
    unit: 'MiB',
    values: growth,
    baseline: { name: 'bound', values: growth.map(() => bound / MiB) },
    ratios,
    target: { of: 'ratio', op: '<=', limit: 1 },
    note: `settings ${JSON.stringify(env)}; with the defaults (${defaults.MAX_CONCURRENT_UPLOADS} uploads) the bound is ` +
      `${((replicaMemoryBound(defaults) ?? Number.NaN) / MiB).toFixed(0)} MiB above idle`
  }]
}
