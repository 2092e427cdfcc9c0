/**
 * Peak RSS of the server while it takes one large upload, against its idle RSS.
 * Starts the built server (dist/) as a child on a temporary DATA_DIR, streams a
 * generated batch file of SIZE_MB through a real socket and samples the child's VmRSS
 * from /proc every 50 ms. Run: `npm run build && node --import tsx bench/upload-memory.ts [SIZE_MB] [purpose]`.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

const sizeMb = Number(process.argv[2] ?? 1024)
const purpose = process.argv[3] ?? 'batch'
const KEY = 'bench-key-0123456789abcdef'
const BOUNDARY = 'bench-boundary-5f1c2a'

async function rssOf (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024
}

/** Deterministic batch lines: 50,000 requests fill SIZE_MB, so the default request limit holds. */
function * body (totalBytes: number): Generator<Buffer> {
  const requests = 50000
  const lineBytes = Math.floor(totalBytes / requests)
  const filler = 'lorem ipsum dolor sit amet '.repeat(Math.ceil(lineBytes / 27))
  yield Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\nContent-Type: application/octet-stream\r\n\r\n`)
  let batch: string[] = []
  for (let i = 0; i < requests; i++) {
    const head = JSON.stringify({ custom_id: `request-${i}`, method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: '' }] } })
    const pad = Math.max(0, lineBytes - head.length - 1)
    batch.push(head.replace('"content":""', `"content":"${filler.slice(0, pad)}"`))
    if (batch.length === 64) { yield Buffer.from(batch.join('\n') + '\n'); batch = [] }
  }
  if (batch.length > 0) yield Buffer.from(batch.join('\n') + '\n')
  yield Buffer.from(`\r\n--${BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n${purpose}\r\n--${BOUNDARY}--\r\n`)
}

async function main (): Promise<void> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'files-api-bench-'))
  const port = 30000 + Math.floor(Math.random() * 20000)
  const child = spawn(process.execPath, ['dist/src/server.js'], {
    env: { ...process.env, PORT: String(port), DATA_DIR: dataDir, API_KEYS: KEY, LOG_LEVEL: 'warn', MAX_FILE_BYTES: String(4 * 1024 ** 3), BATCH_MAX_FILE_BYTES: String(4 * 1024 ** 3) },
    stdio: ['ignore', 'inherit', 'inherit']
  })
  const pid = child.pid ?? 0
  try {
    for (let i = 0; i < 100; i++) {
      const up = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false)
      if (up) break
      await sleep(100)
    }
    await sleep(500)
    const idle = await rssOf(pid)
    let peak = idle
    let sampling = true
    const sampler = (async () => { while (sampling) { peak = Math.max(peak, await rssOf(pid)); await sleep(50) } })()
    const started = performance.now()
    let sent = 0
    const result = await new Promise<{ status: number, text: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/v1/files', method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': `multipart/form-data; boundary=${BOUNDARY}` } }, (res) => {
        let text = ''
        res.on('data', (c: Buffer) => { text += c.toString() })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
      })
      req.on('error', reject)
      const chunks = body(sizeMb * 1024 * 1024)
      const pump = (): void => {
        for (let next = chunks.next(); !next.done; next = chunks.next()) {
          sent += next.value.length
          if (!req.write(next.value)) { req.once('drain', pump); return }
        }
        req.end()
      }
      pump()
    })
    const seconds = (performance.now() - started) / 1000
    sampling = false
    await sampler
    const mb = (n: number) => (n / 1024 / 1024).toFixed(1)
    const file = JSON.parse(result.text) as { bytes?: number }
    console.log(JSON.stringify({ status: result.status, purpose, sentMB: mb(sent), storedBytes: file.bytes, seconds: seconds.toFixed(1), throughputMBps: (sent / 1024 / 1024 / seconds).toFixed(1), idleRssMB: mb(idle), peakRssMB: mb(peak), growthMB: mb(peak - idle) }))
    if (result.status !== 200) console.log(result.text.slice(0, 500))
  } finally {
    child.kill('SIGTERM')
    await rm(dataDir, { recursive: true, force: true })
  }
}

await main()
