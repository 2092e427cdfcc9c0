/**
 * Byte-moving figures: uploads to fs and s3 and downloads, each run paired with the raw
 * operation on the same bytes (disk copy, JSON.parse floor, lib-storage, GetObject, a
 * plain file read) measured right before it.
 */
import { createReadStream } from 'node:fs'
import path from 'node:path'
import BetterSqlite3 from 'better-sqlite3'
import { diskCopy, parseFloor, validatorAlone } from './baselines.js'
import type { DataFile } from './data.js'
import { deleteFile, download, upload } from './http.js'
import type { Figure } from './report.js'
import { rawDelete, rawGet, rawUpload, type S3Target } from './s3.js'
import { cpuOf, settleDisk, type RunningServer } from './server.js'
import { mibPerSecond, timed } from './stats.js'

export type Log = (message: string) => void

/** The service's validator alone against the JSON.parse floor, in this process. */
export async function validatorFigures (files: DataFile[], runs: number, log: Log): Promise<Figure[]> {
  const figures: Figure[] = []
  for (const file of files) {
    // One unmeasured round: otherwise the first floor run pays for warming up JSON.parse.
    await parseFloor(file.path)
    await validatorAlone(file.path, file.requests + 1)
    const floor: number[] = []
    const alone: number[] = []
    const floorCpu: number[] = []
    const aloneCpu: number[] = []
    const retained: number[] = []
    for (let run = 0; run < runs; run++) {
      log(`validator ${file.shape} run ${run + 1}/${runs}`)
      const f = await parseFloor(file.path)
      floor.push(mibPerSecond(f.bytes, f.ms))
      floorCpu.push(mibPerSecond(f.bytes, f.cpuMs))
      const v = await validatorAlone(file.path, file.requests + 1)
      if (!v.valid) throw new Error(`the generated ${file.shape} file should be valid`)
      alone.push(mibPerSecond(v.bytes, v.ms))
      aloneCpu.push(mibPerSecond(v.bytes, v.cpuMs))
      if (v.retainedBytes !== null) retained.push(v.retainedBytes / 2 ** 20)
    }
    figures.push({
      group: 'validator (in process)',
      name: `BatchValidator, ${file.shape} lines`,
      unit: 'MiB/s',
      values: alone,
      baseline: { name: 'read+split+JSON.parse', values: floor }
    }, {
      group: 'validator (in process)',
      name: `BatchValidator, ${file.shape} lines, per CPU-second`,
      unit: 'MiB/cpu-s',
      values: aloneCpu,
      baseline: { name: 'read+split+JSON.parse', values: floorCpu },
      note: 'MiB per CPU second of this process: steadier than wall time when the machine is busy'
    })
    if (retained.length > 0) {
      figures.push({
        group: 'validator (in process)',
        name: `retained after ${file.requests} ids (${file.shape})`,
        unit: 'MiB',
        values: retained,
        note: 'heap + ArrayBuffers still held by the finished validator, after a forced GC: the custom_id set'
      })
    }
  }
  return figures
}

/**
 * fs uploads: batch (validated) against the slower of a raw fsynced copy and the parse
 * floor; user_data (not validated) against the copy; batch against user_data is what
 * validation costs end to end.
 */
export async function uploadFsFigures (server: RunningServer, files: DataFile[], runs: number, log: Log): Promise<Figure[]> {
  const figures: Figure[] = []
  for (const file of files) {
    const copy: number[] = []
    const floor: number[] = []
    const batch: number[] = []
    const userData: number[] = []
    const floorCpu: number[] = []
    const batchMainCpu: number[] = []
    const batchAllCpu: number[] = []
    const userMainCpu: number[] = []
    for (let run = 0; run < runs; run++) {
      log(`upload fs ${file.shape} run ${run + 1}/${runs}`)
      // The run starts on a disk with nothing left to write back (server.ts, settleDisk);
      // every side fsyncs what it writes, so once a run is enough.
      await settleDisk()
      const c = await diskCopy(file.path, server.dataDir)
      copy.push(mibPerSecond(c.bytes, c.ms))
      const f = await parseFloor(file.path)
      floor.push(mibPerSecond(f.bytes, f.ms))
      floorCpu.push(mibPerSecond(f.bytes, f.cpuMs))
      const cpu0 = await cpuOf(server.pid)
      const b = await upload(server.url, file.path, 'batch')
      const cpu1 = await cpuOf(server.pid)
      batch.push(mibPerSecond(b.bytes, b.ms))
      batchMainCpu.push(mibPerSecond(b.bytes, (cpu1.main - cpu0.main) * 1000))
      batchAllCpu.push(mibPerSecond(b.bytes, (cpu1.total - cpu0.total) * 1000))
      await deleteFile(server.url, b.id)
      const cpu2 = await cpuOf(server.pid)
      const u = await upload(server.url, file.path, 'user_data')
      const cpu3 = await cpuOf(server.pid)
      userData.push(mibPerSecond(u.bytes, u.ms))
      userMainCpu.push(mibPerSecond(u.bytes, (cpu3.main - cpu2.main) * 1000))
      await deleteFile(server.url, u.id)
    }
    const limit = copy.map((c, i) => Math.min(c, floor[i] ?? Number.NaN))
    const group = `upload to fs, ${file.shape} lines (${(file.bytes / 2 ** 20).toFixed(0)} MiB, ${file.requests} requests)`
    figures.push(
      { group, name: 'limit: raw copy + fsync', unit: 'MiB/s', values: copy },
      { group, name: 'limit: read+split+JSON.parse', unit: 'MiB/s', values: floor },
      { group, name: 'batch upload vs min(copy, parse)', unit: 'MiB/s', values: batch, baseline: { name: 'limit', values: limit }, target: { of: 'ratio', op: '>=', limit: 0.8 } },
      // Issue 12's targets: storing unvalidated at ≥ 0.6× the disk's own copy, validating at ≥ 0.9× of storing unvalidated.
      { group, name: 'user_data upload vs raw copy', unit: 'MiB/s', values: userData, baseline: { name: 'copy', values: copy }, target: { of: 'ratio', op: '>=', limit: 0.6 } },
      { group, name: 'batch vs user_data (validation cost)', unit: 'MiB/s', values: batch, baseline: { name: 'user_data', values: userData }, target: { of: 'ratio', op: '>=', limit: 0.9 } },
      {
        group,
        name: 'batch: per server main-thread CPU-s vs parse per CPU-s',
        unit: 'MiB/cpu-s',
        values: batchMainCpu,
        baseline: { name: 'parse', values: floorCpu },
        note: 'load-robust: the upload throughput bound if the event loop had a core to itself'
      },
      { group, name: 'batch: per server CPU-s, all threads', unit: 'MiB/cpu-s', values: batchAllCpu },
      { group, name: 'user_data: per server main-thread CPU-s', unit: 'MiB/cpu-s', values: userMainCpu }
    )
  }
  return figures
}

/**
 * s3 upload through the service against lib-storage straight to the same S3 server:
 * user_data is the driver and pipeline's own overhead, batch adds validation's CPU,
 * which on a small machine competes with a local S3 server for the same cores.
 */
export async function uploadS3Figures (server: RunningServer, s3: S3Target, files: DataFile[], runs: number, log: Log): Promise<Figure[]> {
  const figures: Figure[] = []
  for (const file of files) figures.push(...await uploadS3FileFigures(server, s3, file, runs, log))
  return figures
}

async function uploadS3FileFigures (server: RunningServer, s3: S3Target, file: DataFile, runs: number, log: Log): Promise<Figure[]> {
  const raw: number[] = []
  const batch: number[] = []
  const userData: number[] = []
  for (let run = 0; run < runs; run++) {
    log(`upload s3 (${s3.kind}) ${file.shape} run ${run + 1}/${runs}`)
    await settleDisk()
    const key = `bench/raw-${run}`
    raw.push(mibPerSecond(file.bytes, await rawUpload(s3, file.path, key)))
    await rawDelete(s3, key)
    for (const [purpose, values] of [['batch', batch], ['user_data', userData]] as const) {
      const u = await upload(server.url, file.path, purpose)
      values.push(mibPerSecond(u.bytes, u.ms))
      await deleteFile(server.url, u.id)
    }
  }
  const group = `upload to s3 (${s3.kind}), ${file.shape} lines (${(file.bytes / 2 ** 20).toFixed(0)} MiB)`
  const note = s3.kind === 's3rver'
    ? 's3rver (JavaScript, stores on local disk) shares the CPU and is the bottleneck on both sides; rerun with S3_TEST_ENDPOINT for a real server'
    : `external S3 server at ${s3.endpoint}`
  const target = { of: 'ratio' as const, op: '>=' as const, limit: 0.85 }
  return [
    { group, name: 'user_data upload vs raw lib-storage', unit: 'MiB/s', values: userData, baseline: { name: 'lib-storage', values: raw }, target, note },
    { group, name: 'batch upload vs raw lib-storage', unit: 'MiB/s', values: batch, baseline: { name: 'lib-storage', values: raw }, target, note },
    { group, name: 'batch vs user_data (validation cost)', unit: 'MiB/s', values: batch, baseline: { name: 'user_data', values: userData }, target: { of: 'ratio', op: '>=', limit: 0.9 } }
  ]
}

/** The object key of a file, from the server's SQLite row (keys name the upload, not the file). */
function storageKeyOf (server: RunningServer, id: string): string {
  const db = new BetterSqlite3(path.join(server.dataDir, 'files.db'), { readonly: true })
  try {
    const row = db.prepare('select storage_key from files where id = ?').get(id) as { storage_key: string } | undefined
    if (row === undefined) throw new Error(`no row for ${id} in the server's database`)
    return row.storage_key
  } finally {
    db.close()
  }
}

/** GET /v1/files/{id}/content against reading the stored object directly. */
export async function contentFigures (server: RunningServer, file: DataFile, runs: number, log: Log, s3?: S3Target): Promise<Figure[]> {
  const stored = await upload(server.url, file.path, 'user_data')
  const key = storageKeyOf(server, stored.id)
  const raw: number[] = []
  const service: number[] = []
  try {
    for (let run = 0; run < runs; run++) {
      log(`content ${s3 === undefined ? 'fs' : 's3'} run ${run + 1}/${runs}`)
      if (s3 === undefined) {
        const blob = path.join(server.dataDir, 'blobs', key)
        const { value: bytes, ms } = await timed(async () => {
          let n = 0
          for await (const chunk of createReadStream(blob) as AsyncIterable<Buffer>) n += chunk.length
          return n
        })
        raw.push(mibPerSecond(bytes, ms))
      } else {
        const r = await rawGet(s3, key)
        raw.push(mibPerSecond(r.bytes, r.ms))
      }
      const d = await download(server.url, stored.id)
      if (d.bytes !== file.bytes) throw new Error(`downloaded ${d.bytes} bytes of ${file.bytes}`)
      service.push(mibPerSecond(d.bytes, d.ms))
    }
  } finally {
    await deleteFile(server.url, stored.id)
  }
  return [{
    group: `download (${s3 === undefined ? 'fs' : `s3, ${s3.kind}`}), ${(file.bytes / 2 ** 20).toFixed(0)} MiB`,
    name: 'GET /v1/files/{id}/content vs reading the store',
    unit: 'MiB/s',
    values: service,
    baseline: { name: s3 === undefined ? 'file read' : 'GetObject', values: raw }
  }]
}
