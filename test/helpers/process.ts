import { spawn, type ChildProcess } from 'node:child_process'
import { request } from 'node:http'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { productionNodeArgs } from './node-flags.js'

/** A free TCP port on loopback (bound then released). */
export async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
    server.on('error', reject)
  })
}

export interface ServiceProcess {
  child: ChildProcess
  url: string
  output: () => string
}

export interface ServiceProcessOptions {
  /**
   * A command the server runs under, e.g. `unshare -rm sh -c '… && exec "$@"' sh`: it must
   * exec the command that follows it, so the child's pid stays the server's.
   */
  prefix?: string[]
}

/**
 * Starts `src/server.ts` as its own process, exactly as `npm start` would run it but
 * from source, and waits for /health. Killed in teardown if still running.
 */
export async function startServiceProcess (t: Test, env: Record<string, string>, options: ServiceProcessOptions = {}): Promise<ServiceProcess> {
  const port = await freePort()
  let output = ''
  const [command = process.execPath, ...args] = [...(options.prefix ?? []), process.execPath, ...productionNodeArgs(), '--import', 'tsx', 'src/server.ts']
  const child = spawn(command, args, {
    cwd: new URL('../..', import.meta.url).pathname,
    // Shedding on event-loop delay is off unless a test asks for it, as in startServer: on a
    // busy 2-core CI machine the delay alone turned an engine test's upload into a 503.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'warn', OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0', ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const url = `http://127.0.0.1:${port}`
  // Up to a minute: a loaded CI machine compiles src/ through tsx slowly.
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`server exited early (${child.exitCode}): ${output}`)
    const up = await fetch(`${url}/health`).then((r) => r.ok, () => false)
    if (up) return { child, url, output: () => output }
    await sleep(100)
  }
  throw new Error(`server did not become healthy: ${output}`)
}

export async function waitForExit (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  await new Promise((resolve) => child.once('exit', resolve))
}

export interface KillMidRequest {
  /** The whole URL of the multipart POST. */
  url: string
  key: string
  boundary: string
  /** The multipart text before the streamed body (fields and the file part's headers). */
  head: string
  /** Written over and over until `killAfter` bytes went out. */
  chunk: Buffer
  killAfter: number
}

/** Streams a multipart body until `killAfter` bytes went out, then SIGKILLs the server mid-request. */
export async function killMidRequest (child: ChildProcess, r: KillMidRequest): Promise<void> {
  await new Promise<void>((resolve) => {
    const req = request(r.url, { method: 'POST', headers: { authorization: `Bearer ${r.key}`, 'content-type': `multipart/form-data; boundary=${r.boundary}` } })
    req.on('error', () => resolve())
    req.on('response', () => resolve())
    req.write(r.head)
    let sent = 0
    const pump = (): void => {
      while (sent < r.killAfter) {
        sent += r.chunk.length
        if (!req.write(r.chunk)) { req.once('drain', pump); return }
      }
      // Give the server a moment to pass the bytes on to storage, then kill it hard.
      setTimeout(() => { child.kill('SIGKILL') }, 300)
    }
    pump()
  })
  await waitForExit(child)
}
