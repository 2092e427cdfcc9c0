/**
 * The physical limits the server is compared against, measured on this machine with the
 * same bytes: what the disk and the CPU can do with no HTTP, multipart or service code.
 */
import { createReadStream } from 'node:fs'
import { open, rm } from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { BatchValidator, DEFAULT_BATCH_URLS } from '../../src/jsonl/batch-validator.js'
import { timed } from './stats.js'

export interface Timing {
  bytes: number
  ms: number
}

/**
 * With --expose-gc, collects what earlier measurements left, so no run pays for the
 * garbage of the one before it. Twice: the first pass may only schedule finalisation.
 */
function collectGarbage (): void {
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  gc?.()
}

/** Wall time and this process's CPU time (user + system) of `fn`, in milliseconds. */
async function timedCpu<T> (fn: () => Promise<T>): Promise<{ value: T, ms: number, cpuMs: number }> {
  const cpu = process.cpuUsage()
  const { value, ms } = await timed(fn)
  const used = process.cpuUsage(cpu)
  return { value, ms, cpuMs: (used.user + used.system) / 1000 }
}

/**
 * (a) The disk: a stream copy of the file into `dir` (the server's DATA_DIR, so the same
 * filesystem), fsynced on close exactly as the fs driver's write stream (`flush: true`).
 * The source is in the page cache, as the request body is in memory for the server.
 */
export async function diskCopy (file: string, dir: string): Promise<Timing> {
  const target = path.join(dir, `bench-copy-${process.pid}-${Date.now()}`)
  try {
    const { value: bytes, ms } = await timed(async () => {
      const handle = await open(target, 'wx', 0o640)
      let copied = 0
      const source = createReadStream(file)
      source.on('data', (chunk: Buffer | string) => { copied += chunk.length })
      await pipeline(source, handle.createWriteStream({ flush: true }))
      return copied
    })
    return { bytes, ms }
  } finally {
    await rm(target, { force: true })
  }
}

/**
 * (b) The CPU floor of validation: read, split on '\n', decode and JSON.parse every line,
 * in this one process, with nothing else. No validator can check a line without at least
 * this work, so it is the limit the service's validator is held to.
 */
export async function parseFloor (file: string): Promise<Timing & { lines: number, cpuMs: number }> {
  collectGarbage()
  let lines = 0
  let bytes = 0
  const { ms, cpuMs } = await timedCpu(async () => {
    let carry: Buffer | null = null
    for await (const read of createReadStream(file) as AsyncIterable<Buffer>) {
      bytes += read.length
      const chunk: Buffer = carry === null ? read : Buffer.concat([carry, read])
      let start = 0
      for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
        if (nl > start) JSON.parse(chunk.toString('utf8', start, nl))
        lines++
        start = nl + 1
      }
      carry = start < chunk.length ? chunk.subarray(start) : null
    }
    if (carry !== null) {
      JSON.parse(carry.toString('utf8'))
      lines++
    }
  })
  return { bytes, ms, lines, cpuMs }
}

/**
 * The service's own BatchValidator over the file in this process: no HTTP, no storage.
 * `retainedBytes` is what the finished validator still holds (its custom_id set, almost
 * all of it), measured around a forced GC when node runs with --expose-gc.
 */
export async function validatorAlone (file: string, maxRequests: number): Promise<Timing & { cpuMs: number, valid: boolean, requests: number, retainedBytes: number | null }> {
  let bytes = 0
  const gc = (globalThis as { gc?: () => void }).gc
  collectGarbage()
  const before = process.memoryUsage()
  const validator = new BatchValidator({
    maxRequests,
    maxLineBytes: 6 * 1024 * 1024,
    allowedUrls: DEFAULT_BATCH_URLS,
    modelPolicy: 'warn'
  })
  const { value: result, ms, cpuMs } = await timedCpu(async () => {
    for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
      bytes += chunk.length
      validator.write(chunk)
    }
    return validator.end()
  })
  let retainedBytes: number | null = null
  if (gc !== undefined) {
    collectGarbage()
    const after = process.memoryUsage()
    // Heap plus ArrayBuffers: the custom_id set lives in one or the other depending on its form.
    retainedBytes = (after.heapUsed + after.arrayBuffers) - (before.heapUsed + before.arrayBuffers)
  }
  if (validator.errorCount !== result.errorCount) throw new Error('unreachable: keeps the validator alive until measured')
  return { bytes, ms, cpuMs, valid: result.valid, requests: result.requests, retainedBytes }
}
