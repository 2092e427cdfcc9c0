/**
 * The service under test: the built server (dist/src/server.js, what `npm start` runs)
 * as a child process on a temporary DATA_DIR, so its memory and CPU are its own and
 * can be read from /proc.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { S3Target } from './s3.js'

export const API_KEY = 'bench-key-0123456789abcdef'
const GiB = 1024 ** 3

export interface ServerOptions {
  driver: 'fs' | 's3'
  s3?: S3Target
  /** Extra environment for the server (`--server-env K=V`), applied last. */
  env?: Record<string, string>
  /** Node flags for the server, e.g. --cpu-prof. */
  nodeArgs?: string[]
  /** The server's entry point (`--server-entry`), to compare another build; default dist/src/server.js. */
  entry?: string
}

export interface RunningServer {
  url: string
  pid: number
  dataDir: string
  stop: () => Promise<void>
}

/** A free TCP port on loopback (bound then released). */
async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => { resolve(port) })
    })
    server.on('error', reject)
  })
}

export async function startServer (opts: ServerOptions): Promise<RunningServer> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'files-api-bench-'))
  const port = await freePort()
  const s3 = opts.s3
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    API_KEYS: API_KEY,
    LOG_LEVEL: 'warn',
    // Room for the 1 GB memory figure and for millions of short requests in one file.
    MAX_FILE_BYTES: String(4 * GiB),
    BATCH_MAX_FILE_BYTES: String(4 * GiB),
    BATCH_MAX_REQUESTS: '20000000',
    // Room for --concurrency past the default bound of 16 uploads at once.
    MAX_CONCURRENT_UPLOADS: '256',
    // The default, pinned: a rate limit would turn the metadata figures into 429s.
    RATE_LIMIT_MAX: '0',
    STORAGE_DRIVER: opts.driver,
    ...(s3 === undefined
      ? {}
      : {
          S3_ENDPOINT: s3.endpoint,
          S3_REGION: s3.region,
          S3_BUCKET: s3.bucket,
          S3_ACCESS_KEY_ID: s3.accessKeyId,
          S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
          S3_FORCE_PATH_STYLE: 'true'
        }),
    ...opts.env
  }
  let output = ''
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), opts.entry ?? 'dist/src/server.js'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout?.on('data', (chunk: Buffer) => { output = (output + chunk.toString()).slice(-4000) })
  child.stderr?.on('data', (chunk: Buffer) => { output = (output + chunk.toString()).slice(-4000) })
  const url = `http://127.0.0.1:${port}`
  const stop = async (): Promise<void> => {
    await stopChild(child)
    await rm(dataDir, { recursive: true, force: true })
  }
  try {
    await waitForHealth(url, child, () => output)
  } catch (err) {
    await stop()
    throw err
  }
  return { url, pid: child.pid ?? 0, dataDir, stop }
}

async function waitForHealth (url: string, child: ChildProcess, output: () => string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}: ${output()}`)
    const up = await fetch(`${url}/health`).then((r) => r.ok, () => false)
    if (up) return
    await sleep(100)
  }
  throw new Error(`the server did not answer /health within 30 s: ${output()}`)
}

/** SIGTERM first: the server closes gracefully, which is also when --cpu-prof writes its profile. */
async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  child.kill('SIGTERM')
  const timer = setTimeout(() => { child.kill('SIGKILL') }, 15_000)
  await exited
  clearTimeout(timer)
}

export interface Rss {
  /** Resident set size now. */
  rss: number
  /** Peak resident set size since start or since the last resetPeakRss. */
  hwm: number
}

/** VmRSS and VmHWM from /proc/<pid>/status, in bytes. */
export async function rssOf (pid: number): Promise<Rss> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') }
}

/**
 * Resets the kernel's peak-RSS mark (VmHWM) to the current RSS (`5` to clear_refs, Linux
 * 4.0+), so a later VmHWM is the peak of what came after, sampled by the kernel itself
 * rather than by our polling. Returns false when not allowed.
 */
export async function resetPeakRss (pid: number): Promise<boolean> {
  return await writeFile(`/proc/${pid}/clear_refs`, '5').then(() => true, () => false)
}

/** Polls VmRSS every `everyMs` until stopped, for when VmHWM cannot be reset. */
export function sampleRss (pid: number, everyMs = 50): { stop: () => Promise<number> } {
  let peak = 0
  let running = true
  const loop = (async () => {
    while (running) {
      peak = Math.max(peak, (await rssOf(pid)).rss)
      await sleep(everyMs)
    }
  })()
  return {
    stop: async () => {
      running = false
      await loop
      return peak
    }
  }
}

export interface Cpu {
  /** CPU seconds (user + system) of the main thread: the event loop, JS, the validator. */
  main: number
  /** CPU seconds of the whole process: also libuv's pool (fs writes), GC helpers, workers. */
  total: number
}

let ticksPerSecond: number | undefined

function clockTicks (): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  return ticksPerSecond
}

function cpuSeconds (stat: string): number {
  // Fields after "(comm)": state is field 3, utime 14 and stime 15 (proc(5)).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / clockTicks()
}

/**
 * CPU time used so far, from /proc. Unlike wall time it barely moves when other work
 * shares the machine, so "MiB per main-thread CPU second" is the figure to trust on a
 * busy machine: it is the throughput the upload would reach with a core to itself.
 */
export async function cpuOf (pid: number): Promise<Cpu> {
  const [main, total] = await Promise.all([
    readFile(`/proc/${pid}/task/${pid}/stat`, 'utf8'),
    readFile(`/proc/${pid}/stat`, 'utf8')
  ])
  return { main: cpuSeconds(main), total: cpuSeconds(total) }
}

/**
 * Flushes the page cache's dirty data to disk (sync(1): Node has no sync()) and waits for
 * it, so a timed figure does not share the disk with the writeback of the bench's own
 * files. Where `sync` is missing the figure runs without it.
 */
export async function settleDisk (): Promise<void> {
  await new Promise<void>((resolve) => {
    execFile('sync', () => { resolve() })
  })
}
