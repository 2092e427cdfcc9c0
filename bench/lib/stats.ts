/** Small statistics for the bench: every figure is a median of paired runs. */

export function median (values: readonly number[]): number {
  return percentile(values, 50)
}

/** Nearest-rank percentile (p in 0..100) of `values`; NaN when there are none. */
export function percentile (values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] ?? Number.NaN
}

export const MiB = 1024 * 1024

/** Bytes per second → MiB/s. */
export function mibPerSecond (bytes: number, milliseconds: number): number {
  return bytes / MiB / (milliseconds / 1000)
}

/** Runs `fn` and returns its result with the wall time it took, in milliseconds. */
export async function timed<T> (fn: () => Promise<T>): Promise<{ value: T, ms: number }> {
  const started = performance.now()
  const value = await fn()
  return { value, ms: performance.now() - started }
}
