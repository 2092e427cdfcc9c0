/** One sample of a Prometheus text exposition: its value, or undefined when absent. */
export function sample (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const row of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(row)
    if (match === null || match[1] !== name) continue
    const found: Record<string, string> = {}
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) found[pair[1] as string] = pair[2] as string
    const wanted = Object.entries(labels)
    if (wanted.length === Object.keys(found).length && wanted.every(([k, v]) => found[k] === v)) return Number(match[3])
  }
  return undefined
}
