import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { judgeSoak } from '../test/soak/helpers/soak-report.js'
import { runSoak } from '../test/soak/helpers/soak-run.js'
import { MiB } from '../test/soak/helpers/soak-stats.js'
import { freePort } from '../test/helpers/process.js'

const HELP = `npm run soak -- [--seconds 300] [--concurrency 8] [--keep 20]

Starts the service (src/server.ts) as a child process on loopback, on a temporary
DATA_DIR, and drives it for --seconds with --concurrency workers: valid and invalid
batch uploads, user_data uploads, list, retrieve, content, deletes (each worker keeps at
most --keep files). Samples the server's RSS and open descriptors every second, then
verifies every stored file by sha256. Prints a summary; exits 1 on any unexpected
answer, corrupt file, drift of RSS or descriptors, or a p99 over 2 s.`

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '300' },
    concurrency: { type: 'string', default: '8' },
    keep: { type: 'string', default: '20' },
    help: { type: 'boolean', default: false }
  }
})
if (values.help) {
  process.stdout.write(`${HELP}\n`)
  process.exit(0)
}
const seconds = Number(values.seconds)
const concurrency = Number(values.concurrency)
const keep = Number(values.keep)
if (!(seconds > 0) || !Number.isInteger(concurrency) || concurrency < 1 || !Number.isInteger(keep) || keep < 1) {
  process.stderr.write(`${HELP}\n`)
  process.exit(2)
}

const key = `sk-soak-${randomBytes(12).toString('hex')}`
const dataDir = await mkdtemp(path.join(tmpdir(), 'files-api-soak-'))
const port = await freePort()
const url = `http://127.0.0.1:${port}`
const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
  cwd: new URL('..', import.meta.url).pathname,
  env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DATA_DIR: dataDir, API_KEYS: `${key}=soak`, LOG_LEVEL: 'warn', PORT: String(port), HOST: '127.0.0.1' },
  stdio: ['ignore', 'inherit', 'inherit']
})

async function stop (): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    await exited
  }
  await rm(dataDir, { recursive: true, force: true })
}

let code = 1
try {
  let up = false
  for (let i = 0; i < 200 && !up; i++) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}`)
    up = await fetch(`${url}/health`).then((r) => r.ok, () => false)
    if (!up) await sleep(100)
  }
  if (!up || child.pid === undefined) throw new Error('the server did not become healthy')
  process.stdout.write(`soak: ${seconds} s, ${concurrency} workers, against ${url} (pid ${child.pid}, DATA_DIR ${dataDir})\n`)
  const result = await runSoak({ url, pid: child.pid, key, seconds, concurrency, keepPerWorker: keep, progress: (line) => process.stdout.write(`  ${line}\n`) })
  // Tighter than the CI version: a long run is past its warm-up, so growth is leakage.
  const verdict = judgeSoak(result, { rss: { absolute: 32 * MiB, relative: 0.15 }, fds: { absolute: 8, relative: 0 }, p99Ms: 2000 })
  process.stdout.write(`\n${verdict.text}\n`)
  code = verdict.ok ? 0 : 1
} catch (error) {
  process.stderr.write(`soak: ${error instanceof Error ? error.message : String(error)}\n`)
} finally {
  await stop()
}
process.exit(code)
