import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { productionNodeArgs } from '../test/helpers/node-flags.js'
import { freePort } from '../test/helpers/process.js'

const HELP = `node --import tsx bench/uploads-memory.ts [--mib 2048] [--part-mib 64] [--parallel 4]

Issue 13's memory figure: starts the service (src/server.ts, npm start's node flags) on a
temporary DATA_DIR (fs driver; STORAGE_DRIVER=s3 and the S3_* variables in the environment
are passed through), sends a file of --mib MiB through the Uploads API in parts of
--part-mib MiB, --parallel at once, completes it with its md5, reads the File back and
checks its sha256. Samples the server's RSS every 50 ms: prints the idle RSS and the peak
while parts arrive and while the completion runs. Needs about twice --mib of free disk.`

const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '2048' },
    'part-mib': { type: 'string', default: '64' },
    parallel: { type: 'string', default: '4' },
    help: { type: 'boolean', default: false }
  }
})
if (values.help) {
  console.log(HELP)
  process.exit(0)
}

const MiB = 1024 * 1024
const KEY = 'sk-bench-uploads-0123456789'
const total = Number(values.mib) * MiB
const partSize = Number(values['part-mib']) * MiB
const parallel = Number(values.parallel)
const partCount = Math.ceil(total / partSize)

/** Part i's bytes: a pattern of its own (not all zeros, so nothing compresses it away). */
function partBytes (i: number): Buffer<ArrayBuffer> {
  const size = Math.min(partSize, total - i * partSize)
  const seed = createHash('sha256').update(`part-${i}`).digest()
  const out = Buffer.alloc(size)
  for (let at = 0; at < size; at += seed.length) seed.copy(out, at, 0, Math.min(seed.length, size - at))
  return out
}

function rssOf (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024
}

const dataDir = await mkdtemp(path.join(tmpdir(), 'files-api-uploads-bench-'))
const port = await freePort()
const child = spawn(process.execPath, [...productionNodeArgs(), '--import', 'tsx', 'src/server.ts'], {
  cwd: new URL('..', import.meta.url).pathname,
  env: { ...process.env, DATA_DIR: dataDir, API_KEYS: KEY, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', RECONCILE_INTERVAL_MS: '0' },
  stdio: ['ignore', 'inherit', 'inherit']
})
const url = `http://127.0.0.1:${port}/v1`
const auth = { authorization: `Bearer ${KEY}` }
try {
  for (let i = 0; !(await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false)); i++) {
    if (i > 600) throw new Error('the server did not start')
    await sleep(100)
  }
  const pid = child.pid as number
  await sleep(1000)
  const idle = rssOf(pid)
  let peak = 0
  const sampler = setInterval(() => { peak = Math.max(peak, rssOf(pid)) }, 50)

  const md5 = createHash('md5')
  const sha = createHash('sha256')
  for (let i = 0; i < partCount; i++) {
    const bytes = partBytes(i)
    md5.update(bytes)
    sha.update(bytes)
  }
  const started = performance.now()
  const upload = await (await fetch(`${url}/uploads`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ filename: 'big.bin', purpose: 'user_data', bytes: total, mime_type: 'application/octet-stream' }) })).json() as { id: string }
  const ids: string[] = new Array<string>(partCount)
  let next = 0
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < partCount) {
      const i = next++
      const form = new FormData()
      form.append('data', new Blob([partBytes(i)]), `part-${i}`)
      const res = await fetch(`${url}/uploads/${upload.id}/parts`, { method: 'POST', headers: auth, body: form })
      if (!res.ok) throw new Error(`part ${i}: ${res.status} ${await res.text()}`)
      ids[i] = (await res.json() as { id: string }).id
    }
  }))
  const partsMs = performance.now() - started
  const partsPeak = peak
  peak = 0
  const completeStarted = performance.now()
  const done = await fetch(`${url}/uploads/${upload.id}/complete`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ part_ids: ids, md5: md5.digest('hex') }) })
  if (!done.ok) throw new Error(`complete: ${done.status} ${await done.text()}`)
  const completeMs = performance.now() - completeStarted
  const completePeak = peak
  clearInterval(sampler)
  const file = (await done.json() as { file: { id: string } }).file
  const content = await fetch(`${url}/files/${file.id}/content`, { headers: auth })
  const check = createHash('sha256')
  for await (const chunk of content.body as unknown as AsyncIterable<Uint8Array>) check.update(chunk)
  const identical = check.digest('hex') === sha.digest('hex')
  const m = (bytes: number): string => `${(bytes / MiB).toFixed(0)} MiB`
  console.log(JSON.stringify({
    driver: process.env.STORAGE_DRIVER ?? 'fs',
    fileMiB: total / MiB,
    parts: partCount,
    partMiB: partSize / MiB,
    parallel,
    idleRss: m(idle),
    peakRssParts: m(partsPeak),
    peakRssCompletion: m(completePeak),
    partsSeconds: Math.round(partsMs / 100) / 10,
    completionSeconds: Math.round(completeMs / 100) / 10,
    byteIdentical: identical
  }))
  if (!identical) process.exitCode = 1
} finally {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM')
    await new Promise((resolve) => child.once('exit', resolve))
  }
  await rm(dataDir, { recursive: true, force: true })
}
