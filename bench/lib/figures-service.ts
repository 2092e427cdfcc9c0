/**
 * Figures about the service as a whole: its memory during large uploads, uploads in
 * parallel, and how fast it answers metadata reads next to a trivial route.
 */
import autocannon from 'autocannon'
import { setTimeout as sleep } from 'node:timers/promises'
import { tinyBatch, type DataFile } from './data.js'
import { deleteFile, upload } from './http.js'
import type { Figure } from './report.js'
import { API_KEY, resetPeakRss, rssOf, sampleRss, startServer, type RunningServer, type ServerOptions } from './server.js'
import { mibPerSecond, percentile } from './stats.js'
import type { Log } from './figures-transfer.js'

const MiB = 2 ** 20

/**
 * Peak RSS of a fresh server during one batch upload, against its idle RSS. The peak is
 * the kernel's own VmHWM, reset right before the upload, or, where it cannot be reset,
 * VmRSS polled every 50 ms. A tiny upload first loads multipart, the validator and the
 * store, so "idle" is a server that has served, as in production.
 */

/**
 * The RSS of a warmed-up, settled server before `work`, and its peak during it: the
 * kernel's high-water mark where it can be reset, else what sampling saw.
 */
export async function peakRssDuring<T> (server: RunningServer, work: () => Promise<T>): Promise<{ before: number, peak: number, result: T }> {
  await deleteFile(server.url, (await upload(server.url, tinyBatch(0), 'batch')).id)
  await sleep(1000)
  const before = (await rssOf(server.pid)).rss
  const hwmReset = await resetPeakRss(server.pid)
  const sampler = sampleRss(server.pid)
  const result = await work()
  const sampled = await sampler.stop()
  const peak = hwmReset ? Math.max(sampled, (await rssOf(server.pid)).hwm) : sampled
  return { before, peak, result }
}

export async function memoryFigures (serverOptions: ServerOptions, files: DataFile[], runs: number, log: Log): Promise<Figure[]> {
  const figures: Figure[] = []
  for (const file of files) {
    const growth: number[] = []
    const idle: number[] = []
    const sizeMiB = Math.round(file.bytes / MiB)
    for (let run = 0; run < runs; run++) {
      log(`memory ${sizeMiB} MiB run ${run + 1}/${runs}`)
      const server = await startServer(serverOptions)
      try {
        const { before, peak } = await peakRssDuring(server, async () => await upload(server.url, file.path, 'batch'))
        idle.push(before / MiB)
        growth.push((peak - before) / MiB)
      } finally {
        await server.stop()
      }
    }
    figures.push({
      group: 'server memory (fs, batch, short lines)',
      name: `peak RSS growth, ${sizeMiB} MiB upload (${file.requests} requests)`,
      unit: 'MiB',
      values: growth,
      baseline: { name: 'idle RSS', values: idle },
      ratios: null,
      ...(sizeMiB >= 1024 ? { target: { of: 'value' as const, op: '<=' as const, limit: 100 } } : {})
    })
  }
  return figures
}

/** `concurrency` simultaneous uploads of the same file against one upload alone. */
export async function concurrencyFigures (server: RunningServer, file: DataFile, concurrency: number, runs: number, log: Log): Promise<Figure[]> {
  const single: number[] = []
  const aggregate: number[] = []
  const p50: number[] = []
  const p99: number[] = []
  const latencies: number[] = []
  for (let run = 0; run < runs; run++) {
    log(`concurrency ${concurrency}× run ${run + 1}/${runs}`)
    const one = await upload(server.url, file.path, 'batch')
    single.push(mibPerSecond(one.bytes, one.ms))
    await deleteFile(server.url, one.id)
    const started = performance.now()
    const all = await Promise.all(Array.from({ length: concurrency }, async () => await upload(server.url, file.path, 'batch')))
    const wall = performance.now() - started
    aggregate.push(mibPerSecond(file.bytes * concurrency, wall))
    const ms = all.map((u) => u.ms)
    latencies.push(...ms)
    p50.push(percentile(ms, 50))
    p99.push(percentile(ms, 99))
    for (const u of all) await deleteFile(server.url, u.id)
  }
  const group = `${concurrency} concurrent uploads of ${(file.bytes / MiB).toFixed(0)} MiB (fs, batch)`
  return [
    { group, name: 'aggregate vs one stream alone', unit: 'MiB/s', values: aggregate, baseline: { name: 'single', values: single }, target: { of: 'ratio', op: '>=', limit: 1.5 } },
    { group, name: 'latency p50', unit: 'ms', values: p50 },
    { group, name: 'latency p99', unit: 'ms', values: p99, note: `all latencies (ms): ${latencies.map((l) => l.toFixed(0)).join(' ')}` }
  ]
}

export interface CannonResult { requests: number, seconds: number, p99: number }

export async function cannon (url: string, seconds: number, connections: number, auth: boolean): Promise<CannonResult> {
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    headers: auth ? { authorization: `Bearer ${API_KEY}` } : {}
  })
  // A 4xx/5xx (a rate limit, a wrong id) would be measured as a fast success: refuse it.
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0) {
    throw new Error(`${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors, ${result.timeouts} timeouts`)
  }
  return { requests: result.requests.total, seconds: result.duration, p99: result.latency.p99 }
}

/** Requests per second over slices, and the worst slice's p99. */
export function overSlices (slices: CannonResult[]): { rps: number, p99: number } {
  const requests = slices.reduce((sum, s) => sum + s.requests, 0)
  const seconds = slices.reduce((sum, s) => sum + s.seconds, 0)
  return { rps: requests / seconds, p99: Math.max(...slices.map((s) => s.p99)) }
}

/** Metadata-read targets: a file object by id, and a page of 100. */
export async function metadataTargets (url: string): Promise<{ targets: Array<{ name: string, url: string }>, ids: string[] }> {
  const ids: string[] = []
  for (let i = 0; i < 150; i++) ids.push((await upload(url, tinyBatch(i), 'batch')).id)
  const id = ids[75] ?? ''
  return {
    ids,
    targets: [
      { name: 'GET /v1/files/{id}', url: `${url}/v1/files/${id}` },
      { name: 'GET /v1/files?limit=100', url: `${url}/v1/files?limit=100` }
    ]
  }
}

/**
 * Metadata reads against GET /health in the same server, the same connections and the
 * same seconds: the ratio is what auth, the route, SQLite and serialisation cost. Each
 * run interleaves one-second slices (/health, then each target, `seconds` times over),
 * so a shared machine that slows down for a few seconds slows all of them alike; five
 * seconds of each, one after the other, gave ratios 0.38–0.66 minutes apart.
 */
export async function metadataFigures (server: RunningServer, seconds: number, connections: number, runs: number, log: Log): Promise<Figure[]> {
  const { targets, ids } = await metadataTargets(server.url)
  const health: Array<{ rps: number, p99: number }> = []
  const measured = targets.map(() => [] as Array<{ rps: number, p99: number }>)
  for (let run = 0; run < runs; run++) {
    log(`metadata run ${run + 1}/${runs}`)
    const healthSlices: CannonResult[] = []
    const targetSlices = targets.map(() => [] as CannonResult[])
    for (let slice = 0; slice < seconds; slice++) {
      healthSlices.push(await cannon(`${server.url}/health`, 1, connections, false))
      for (const [i, target] of targets.entries()) targetSlices[i]!.push(await cannon(target.url, 1, connections, true))
    }
    health.push(overSlices(healthSlices))
    for (const [i, slices] of targetSlices.entries()) measured[i]!.push(overSlices(slices))
  }
  for (const fileId of ids) await deleteFile(server.url, fileId)
  const group = `metadata reads (autocannon, ${connections} connections, ${seconds} interleaved 1-s slices per run, 150 files)`
  return targets.flatMap((target, i) => [
    { group, name: `${target.name} req/s vs GET /health`, unit: 'req/s', values: measured[i]!.map((r) => r.rps), baseline: { name: '/health', values: health.map((r) => r.rps) }, target: { of: 'ratio' as const, op: '>=' as const, limit: 0.5 } },
    { group, name: `${target.name} p99 latency (worst slice)`, unit: 'ms', values: measured[i]!.map((r) => r.p99), baseline: { name: '/health', values: health.map((r) => r.p99) }, ratios: null }
  ])
}
