import { readFile, readdir } from 'node:fs/promises'

/** One reading of the server process, taken every second. */
export interface Sample {
  /** Seconds since the load started. */
  at: number
  rssBytes: number
  fds: number
  /** Requests answered so far (all kinds). */
  requests: number
}

/** Resident set (VmRSS) and open descriptors of a process, from /proc (Linux). */
export async function sampleProcess (pid: number): Promise<{ rssBytes: number, fds: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN)
  const fds = (await readdir(`/proc/${pid}/fd`)).length
  return { rssBytes: rssKb * 1024, fds }
}

export function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN
}

export function median (values: readonly number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50)
}

/** Least-squares slope of `y` over `x` (units of y per unit of x). */
export function slope (x: readonly number[], y: readonly number[]): number {
  const n = x.length
  if (n < 2) return 0
  const mx = x.reduce((a, b) => a + b, 0) / n
  const my = y.reduce((a, b) => a + b, 0) / n
  let num = 0
  let den = 0
  for (let i = 0; i < n; i++) {
    num += ((x[i] ?? 0) - mx) * ((y[i] ?? 0) - my)
    den += ((x[i] ?? 0) - mx) ** 2
  }
  return den === 0 ? 0 : num / den
}

export interface DriftBound {
  /** Growth always allowed, in the metric's unit (bytes, descriptors). */
  absolute: number
  /** Growth allowed as a fraction of the first third's median. */
  relative: number
}

export interface Drift {
  firstThird: number
  lastThird: number
  growth: number
  allowed: number
  /** Per minute, over the second half: a trend the thirds may hide. */
  slopePerMinute: number
  ok: boolean
}

/**
 * Drift, defined: after a warm-up (the first 20 % of the samples: JIT, pools and page
 * caches filling), the median of the last third of the samples may exceed the median of
 * the first third by at most max(absolute, relative × first). Medians, so a GC pause or
 * a burst of open uploads does not decide; thirds, so a slow leak over the run does.
 */
export function drift (samples: readonly Sample[], value: (s: Sample) => number, bound: DriftBound): Drift {
  const steady = samples.slice(Math.floor(samples.length * 0.2))
  const third = Math.max(1, Math.floor(steady.length / 3))
  const firstThird = median(steady.slice(0, third).map(value))
  const lastThird = median(steady.slice(-third).map(value))
  const half = samples.slice(Math.floor(samples.length / 2))
  const allowed = Math.max(bound.absolute, bound.relative * firstThird)
  const growth = lastThird - firstThird
  return {
    firstThird,
    lastThird,
    growth,
    allowed,
    slopePerMinute: slope(half.map((s) => s.at), half.map(value)) * 60,
    ok: steady.length >= 3 && growth <= allowed
  }
}

/** A plain-text table: the first row is the header, numbers right-aligned. */
export function table (rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const cells = rows.map((row) => row.map((cell) => (typeof cell === 'number' ? formatNumber(cell) : cell)))
  const widths = cells[0]?.map((_, i) => Math.max(...cells.map((row) => row[i]?.length ?? 0))) ?? []
  return cells.map((row, r) => {
    const line = row.map((cell, i) => (typeof rows[r]?.[i] === 'number' ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0))).join('  ')
    return r === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line
  }).join('\n')
}

function formatNumber (n: number): string {
  if (!Number.isFinite(n)) return '-'
  return Number.isInteger(n) ? String(n) : n.toFixed(1)
}

export const MiB = 1024 * 1024
