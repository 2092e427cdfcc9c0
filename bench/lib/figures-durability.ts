/**
 * What durable commits cost (issue 9, item 5): small uploads through the whole service,
 * in this process, on fs storage and SQLite, durable (directory fsync after the rename,
 * synchronous = FULL: what production runs) against a baseline without the directory
 * fsync and with synchronous = NORMAL. The baseline exists only here: the drivers' options
 * that turn durability off are reached by no setting.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createApiKeyTable } from '../../src/api-keys.js'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { createSqliteFileStore } from '../../src/metadata/sqlite-file-store.js'
import { createFsBlobStore } from '../../src/storage/fs-blob-store.js'
import { tinyBatch } from './data.js'
import type { Log } from './figures-transfer.js'
import { upload } from './http.js'
import type { Figure } from './report.js'
import { API_KEY } from './server.js'
import { percentile } from './stats.js'

interface Sample { p50: number, p99: number, perSecond: number, concurrentPerSecond: number }

const CONCURRENT = 8

async function measure (durable: boolean, count: number): Promise<Sample> {
  const dir = await mkdtemp(path.join(tmpdir(), 'files-api-bench-durable-'))
  const blobStore = await createFsBlobStore({ root: path.join(dir, 'blobs'), syncDirectories: durable })
  const fileStore = await createSqliteFileStore({ filename: path.join(dir, 'files.db'), synchronous: durable ? 'FULL' : 'NORMAL' })
  const config = loadConfig({ DATA_DIR: dir, LOG_LEVEL: 'silent', OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0', EXPIRY_SWEEP_INTERVAL_MS: '0', RECONCILE_INTERVAL_MS: '0' })
  const app = await buildApp({ config, keys: createApiKeyTable([[API_KEY, 'default']]), blobStore, fileStore, logger: false })
  try {
    await app.listen({ port: 0, host: '127.0.0.1' })
    const address = app.server.address()
    if (address === null || typeof address === 'string') throw new Error('no TCP address')
    const url = `http://127.0.0.1:${address.port}`
    await upload(url, tinyBatch(0), 'batch') // warm-up: the project directory exists from here on
    const latencies: number[] = []
    const started = performance.now()
    for (let i = 1; i <= count; i++) latencies.push((await upload(url, tinyBatch(i), 'batch')).ms)
    const sequentialMs = performance.now() - started
    const concurrentStarted = performance.now()
    await Promise.all(Array.from({ length: CONCURRENT }, async (_, worker) => {
      for (let i = worker; i < count; i += CONCURRENT) await upload(url, tinyBatch(count + i), 'batch')
    }))
    const concurrentMs = performance.now() - concurrentStarted
    return {
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      perSecond: count / (sequentialMs / 1000),
      concurrentPerSecond: count / (concurrentMs / 1000)
    }
  } finally {
    await app.close()
    await fileStore.close()
    await blobStore.close()
    await rm(dir, { recursive: true, force: true })
  }
}

/** `count` small batch uploads one after another, then `count` more 8 at a time, per side and run. */
export async function durabilityFigures (count: number, runs: number, log: Log): Promise<Figure[]> {
  const durable: Sample[] = []
  const baseline: Sample[] = []
  for (let run = 0; run < runs; run++) {
    log(`durability run ${run + 1}/${runs}: ${count} small uploads per side`)
    baseline.push(await measure(false, count))
    durable.push(await measure(true, count))
  }
  const group = `durable commits (fs + SQLite, ${tinyBatch(1).length}-byte batch uploads, in-process server)`
  const baselineName = 'no dir fsync, synchronous=NORMAL'
  const pick = (samples: Sample[], key: keyof Sample): number[] => samples.map((s) => s[key])
  return [
    { group, name: 'upload latency p50, one at a time', unit: 'ms', values: pick(durable, 'p50'), baseline: { name: baselineName, values: pick(baseline, 'p50') } },
    { group, name: 'upload latency p99, one at a time', unit: 'ms', values: pick(durable, 'p99'), baseline: { name: baselineName, values: pick(baseline, 'p99') } },
    { group, name: 'uploads per second, one at a time', unit: '1/s', values: pick(durable, 'perSecond'), baseline: { name: baselineName, values: pick(baseline, 'perSecond') } },
    { group, name: `uploads per second, ${CONCURRENT} at a time`, unit: '1/s', values: pick(durable, 'concurrentPerSecond'), baseline: { name: baselineName, values: pick(baseline, 'concurrentPerSecond') } }
  ]
}
