import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createApiKeyTable } from '../../src/api-keys.js'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { getBatch } from '../../src/batches/batch-store.js'
import { startControllableUpstream } from '../../test/batches/helpers/controllable-upstream.js'
import { chatLines, createBatchRow, uploadBatchFile } from '../../test/batches/engine/helpers.js'

const n = Number(process.argv[2] ?? 5000)
const latency = Number(process.argv[3] ?? 0)
const c = process.argv[4] ?? '64'
const upstream = await startControllableUpstream()
upstream.setFallback({ latencyMs: latency })
const dir = mkdtempSync(path.join(tmpdir(), 'q-'))
const config = loadConfig({ DATA_DIR: dir, LOG_LEVEL: 'silent', UPSTREAM_BASE_URL: `${upstream.url}/v1`, BATCH_CONCURRENCY: c, UPSTREAM_MAX_CONCURRENCY: c, BATCH_POLL_INTERVAL_MS: '50', OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0', ...(process.env.DB ? { DATABASE_URL: process.env.DB } : {}) })
const app = await buildApp({ config, keys: createApiKeyTable([['sk-test-project-a-0123456789', 'project-a']]) })
await app.listen({ port: 0, host: '127.0.0.1' })
const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
const fileId = await uploadBatchFile(url, chatLines(n))
const cpu0 = process.cpuUsage()
const t0 = Date.now()
const b = await createBatchRow(app, fileId)
for (;;) {
  const got = await getBatch(app.fileStore.batchDb, b.id)
  if (got?.status === 'completed') break
  await new Promise((r) => setTimeout(r, 20))
}
const s = (Date.now() - t0) / 1000
const cpu = process.cpuUsage(cpu0)
console.log(JSON.stringify({ n, latency, c, seconds: s, rps: Math.round(n / s), bound: latency > 0 ? Math.round(Number(c) / (latency / 1000)) : null, cpuSeconds: (cpu.user + cpu.system) / 1e6, maxInFlight: upstream.maxInFlight() }))
await app.close(); await upstream.close()
