import type { SoakResult } from './soak-run.js'
import { MiB, drift, percentile, table, type Drift, type DriftBound } from './soak-stats.js'

export interface SoakBounds {
  rss: DriftBound
  fds: DriftBound
  /** p99 latency of all requests, in ms: a ceiling against a server that degrades, not a benchmark. */
  p99Ms: number
}

export interface SoakVerdict {
  ok: boolean
  problems: string[]
  requests: number
  p99Ms: number
  rssDrift: Drift
  fdDrift: Drift
  text: string
}

/** Judges a soak against `bounds` and renders the summary tables. */
export function judgeSoak (result: SoakResult, bounds: SoakBounds): SoakVerdict {
  const all = [...result.latencies.values()].flat().sort((a, b) => a - b)
  const requests = all.length
  const p99Ms = percentile(all, 99)
  const rssDrift = drift(result.samples, (s) => s.rssBytes, bounds.rss)
  const fdDrift = drift(result.samples, (s) => s.fds, bounds.fds)
  const problems: string[] = []
  if (result.unexpected.length > 0) problems.push(`${result.unexpected.length} unexpected answers, first: ${JSON.stringify(result.unexpected.slice(0, 3))}`)
  if (result.verified !== result.stored) problems.push(`${result.stored - result.verified} of ${result.stored} stored files did not match what was sent`)
  if (!rssDrift.ok) problems.push(`RSS drifted by ${(rssDrift.growth / MiB).toFixed(1)} MiB (allowed ${(rssDrift.allowed / MiB).toFixed(1)} MiB)`)
  if (!fdDrift.ok) problems.push(`open descriptors drifted by ${fdDrift.growth} (allowed ${fdDrift.allowed})`)
  if (!(p99Ms <= bounds.p99Ms)) problems.push(`p99 latency ${p99Ms.toFixed(1)} ms over ${bounds.p99Ms} ms`)

  const rows: Array<Array<string | number>> = [['kind', 'requests', 'unexpected', 'p50 ms', 'p99 ms', 'max ms']]
  for (const [kind, values] of [...result.latencies.entries()].sort()) {
    const sorted = [...values].sort((a, b) => a - b)
    rows.push([kind, sorted.length, result.unexpected.filter((u) => u.kind === kind).length, percentile(sorted, 50), percentile(sorted, 99), sorted.at(-1) ?? Number.NaN])
  }
  rows.push(['all', requests, result.unexpected.length, percentile(all, 50), p99Ms, all.at(-1) ?? Number.NaN])

  const first = result.samples[0]
  const last = result.samples.at(-1)
  const resources: Array<Array<string | number>> = [
    ['resource', 'start', 'end', 'max', 'first third', 'last third', 'growth', 'allowed', 'slope/min (2nd half)', 'verdict'],
    ['RSS MiB', (first?.rssBytes ?? 0) / MiB, (last?.rssBytes ?? 0) / MiB, Math.max(...result.samples.map((s) => s.rssBytes)) / MiB,
      rssDrift.firstThird / MiB, rssDrift.lastThird / MiB, rssDrift.growth / MiB, rssDrift.allowed / MiB, rssDrift.slopePerMinute / MiB, rssDrift.ok ? 'flat' : 'DRIFT'],
    ['open fds', first?.fds ?? 0, last?.fds ?? 0, Math.max(...result.samples.map((s) => s.fds)),
      fdDrift.firstThird, fdDrift.lastThird, fdDrift.growth, fdDrift.allowed, fdDrift.slopePerMinute, fdDrift.ok ? 'flat' : 'DRIFT']
  ]

  // Ten points of the timeline: how the process looked as the run went on.
  const timeline: Array<Array<string | number>> = [['t s', 'requests/s', 'RSS MiB', 'fds']]
  const step = Math.max(1, Math.floor(result.samples.length / 10))
  for (let i = step; i < result.samples.length; i += step) {
    const a = result.samples[i - step]
    const b = result.samples[i]
    if (a === undefined || b === undefined) continue
    timeline.push([Math.round(b.at), (b.requests - a.requests) / Math.max(0.001, b.at - a.at), b.rssBytes / MiB, b.fds])
  }

  const text = [
    `soak: ${result.seconds.toFixed(0)} s, ${requests} requests (${(requests / result.seconds).toFixed(0)}/s), ${result.unexpected.length} unexpected, ` +
      `${result.retried} resent on a closed keep-alive socket, ${result.verified}/${result.stored} stored files verified by sha256`,
    '', table(rows), '', table(resources), '', table(timeline), '',
    problems.length === 0 ? 'verdict: PASS' : `verdict: FAIL\n- ${problems.join('\n- ')}`
  ].join('\n')
  return { ok: problems.length === 0, problems, requests, p99Ms, rssDrift, fdDrift, text }
}
