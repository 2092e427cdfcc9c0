import { readdir, readFile } from 'node:fs/promises'
import { batchFile } from './lib/data.js'
import { startServer, settleDisk } from './lib/server.js'
import { upload, deleteFile, type Purpose } from './lib/http.js'

async function threads (pid: number): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    try {
      const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      out.set(`${tid}:${comm}`, (Number(f[11]) + Number(f[12])) / 100)
    } catch {}
  }
  return out
}
const selfCpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6 }
const shape = (process.argv[2] ?? 'short') as 'short'
const file = await batchFile('/tmp/bd', shape, 200 * 1024 * 1024)
const server = await startServer({ driver: 'fs', env: Object.fromEntries((process.argv[3] ?? '').split(',').filter(Boolean).map((kv) => kv.split('='))) })
try {
  for (const purpose of ['user_data', 'batch', 'user_data', 'batch'] as Purpose[]) {
    await settleDisk()
    const a = await threads(server.pid); const c0 = selfCpu()
    const r = await upload(server.url, file.path, purpose)
    const b = await threads(server.pid); const c1 = selfCpu()
    const s = r.ms / 1000
    const rows = [...b].map(([k, v]) => [k, v - (a.get(k) ?? 0)] as const).filter(([, d]) => d > 0.02)
    const agg = new Map<string, number>()
    for (const [k, d] of rows) { const n = k.split(':')[1]!; agg.set(n, (agg.get(n) ?? 0) + d) }
    console.log(`${purpose.padEnd(9)} ${(r.bytes / 1048576 / s).toFixed(1)} MiB/s wall ${s.toFixed(2)} s; client ${(c1 - c0).toFixed(2)} cpu-s;`, [...agg].map(([n, d]) => `${n} ${(d / s * 100).toFixed(0)}%`).join(', '))
    await deleteFile(server.url, r.id)
  }
} finally { await server.stop() }
