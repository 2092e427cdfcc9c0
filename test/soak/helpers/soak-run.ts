import { createHash, randomInt } from 'node:crypto'
import { Agent, request } from 'node:http'
import { invalidBatch, userData, validBatch, type SoakUpload } from './soak-files.js'
import { sampleProcess, type Sample } from './soak-stats.js'

export interface SoakOptions {
  url: string
  /** The server's process id, for /proc readings. */
  pid: number
  key: string
  seconds: number
  concurrency: number
  /** Files each worker keeps at most; older ones are deleted, so storage stays bounded. */
  keepPerWorker?: number
  /** Called about every 10 s with a progress line. */
  progress?: (line: string) => void
}

export type Kind = 'upload_batch' | 'upload_invalid' | 'upload_user_data' | 'list' | 'retrieve' | 'content' | 'delete' | 'verify'

export interface SoakResult {
  seconds: number
  latencies: Map<Kind, number[]>
  /** Anything but the exact expected answer: status, code, errors, bytes. */
  unexpected: Array<{ kind: Kind, detail: string }>
  /** Requests resent once after the server closed an idle keep-alive socket under them. */
  retried: number
  samples: Sample[]
  stored: number
  verified: number
}

interface Answer { status: number, body: Buffer }

interface StoredFile { id: string, sha256: string, bytes: number }

const MULTIPART_BOUNDARY = 'soak-boundary-1b7e'

function multipart (upload: SoakUpload): Buffer {
  return Buffer.concat([
    Buffer.from(`--${MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n${upload.purpose}\r\n`),
    Buffer.from(`--${MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="${upload.filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`),
    upload.content,
    Buffer.from(`\r\n--${MULTIPART_BOUNDARY}--\r\n`)
  ])
}

/**
 * Runs the soak: `concurrency` workers, each uploading (valid and invalid batch files,
 * user_data files) and reading (list, retrieve, content) its own files, deleting its
 * oldest past `keepPerWorker`, for `seconds`; the server process is sampled every
 * second. Then every file still stored is downloaded and its sha256 compared.
 */
export async function runSoak (options: SoakOptions): Promise<SoakResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency })
  const auth = `Bearer ${options.key}`
  const keep = options.keepPerWorker ?? 20
  const latencies = new Map<Kind, number[]>()
  const unexpected: SoakResult['unexpected'] = []
  let retried = 0
  let answered = 0

  async function call (kind: Kind, method: string, path: string, body?: Buffer): Promise<Answer> {
    for (let attempt = 0; ; attempt++) {
      const started = performance.now()
      try {
        const answer = await once(method, path, body)
        const list = latencies.get(kind) ?? []
        list.push(performance.now() - started)
        latencies.set(kind, list)
        answered++
        return answer
      } catch (error) {
        // Node's documented pattern: a reused keep-alive socket the server had just closed.
        if (attempt === 0 && (error as { reused?: boolean }).reused === true) { retried++; continue }
        throw error
      }
    }
  }

  async function once (method: string, path: string, body?: Buffer): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { authorization: auth }
      if (body !== undefined) headers['content-type'] = `multipart/form-data; boundary=${MULTIPART_BOUNDARY}`
      const req = request(`${options.url}${path}`, { method, agent, headers }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }) })
        res.on('error', reject)
      })
      req.on('error', (error: NodeJS.ErrnoException) => { reject(Object.assign(error, { reused: req.reusedSocket && error.code === 'ECONNRESET' })) })
      req.end(body)
    })
  }

  function expect (kind: Kind, ok: boolean, detail: () => string): void {
    if (!ok) unexpected.push({ kind, detail: detail().slice(0, 500) })
  }

  async function upload (kind: Kind, file: SoakUpload, mine: StoredFile[]): Promise<void> {
    const res = await call(kind, 'POST', '/v1/files', multipart(file))
    const text = res.body.toString()
    if (file.expectedError !== undefined) {
      const error = res.status === 400 ? (JSON.parse(text) as { error: { code: string, error_count: number, errors: Array<{ code: string, line: number }> } }).error : undefined
      const got = error === undefined ? null : [error.code, error.error_count, ...error.errors.map((e) => `${e.code}@${e.line}`)]
      const want = ['invalid_batch_file', 1, `${file.expectedError[0]}@${file.expectedError[1]}`]
      expect(kind, JSON.stringify(got) === JSON.stringify(want), () => `${res.status} ${text}; wanted ${JSON.stringify(want)}`)
      return
    }
    const object = res.status === 200 ? JSON.parse(text) as { id: string, bytes: number } : undefined
    expect(kind, object !== undefined && object.bytes === file.content.length, () => `${res.status} ${text}`)
    if (object !== undefined) mine.push({ id: object.id, sha256: file.sha256, bytes: file.content.length })
  }

  async function worker (deadline: number): Promise<StoredFile[]> {
    const mine: StoredFile[] = []
    while (performance.now() < deadline) {
      const roll = randomInt(100)
      const pick = mine[randomInt(Math.max(1, mine.length))]
      if (roll < 20) await upload('upload_batch', validBatch(), mine)
      else if (roll < 30) await upload('upload_invalid', invalidBatch(), mine)
      else if (roll < 40) await upload('upload_user_data', userData(), mine)
      else if (roll < 55) {
        const res = await call('list', 'GET', '/v1/files?limit=100')
        expect('list', res.status === 200 && (JSON.parse(res.body.toString()) as { object: string }).object === 'list', () => `${res.status} ${res.body.toString()}`)
      } else if (roll < 75 && pick !== undefined) {
        const res = await call('retrieve', 'GET', `/v1/files/${pick.id}`)
        expect('retrieve', res.status === 200 && (JSON.parse(res.body.toString()) as { bytes: number }).bytes === pick.bytes, () => `${res.status} ${res.body.toString()}`)
      } else if (pick !== undefined) {
        const res = await call('content', 'GET', `/v1/files/${pick.id}/content`)
        expect('content', res.status === 200 && createHash('sha256').update(res.body).digest('hex') === pick.sha256, () => `${res.status}, ${res.body.length} bytes for ${pick.id}`)
      }
      while (mine.length > keep) {
        const oldest = mine.shift()
        if (oldest === undefined) break
        const res = await call('delete', 'DELETE', `/v1/files/${oldest.id}`)
        expect('delete', res.status === 200, () => `${res.status} ${res.body.toString()}`)
      }
    }
    return mine
  }

  const samples: Sample[] = []
  const start = performance.now()
  const sample = async (): Promise<void> => {
    const reading = await sampleProcess(options.pid)
    samples.push({ at: (performance.now() - start) / 1000, ...reading, requests: answered })
    if (samples.length % 10 === 0) {
      options.progress?.(`${samples.length} s: ${answered} requests, ${unexpected.length} unexpected, RSS ${(reading.rssBytes / 1048576).toFixed(0)} MiB, ${reading.fds} fds`)
    }
  }
  await sample()
  const sampler = setInterval(() => { sample().catch(() => {}) }, 1000)
  let kept: StoredFile[][]
  try {
    const deadline = start + options.seconds * 1000
    kept = await Promise.all(Array.from({ length: options.concurrency }, async () => worker(deadline)))
  } finally {
    clearInterval(sampler)
  }
  await sample()
  const seconds = (performance.now() - start) / 1000

  // Every file still stored, byte for byte; and the list holds exactly these.
  const files = kept.flat()
  let verified = 0
  for (const file of files) {
    const res = await call('verify', 'GET', `/v1/files/${file.id}/content`)
    const same = res.status === 200 && createHash('sha256').update(res.body).digest('hex') === file.sha256
    expect('verify', same, () => `${file.id}: ${res.status}, ${res.body.length} of ${file.bytes} bytes`)
    if (same) verified++
  }
  const listed = await call('list', 'GET', '/v1/files?limit=10000')
  const ids = (JSON.parse(listed.body.toString()) as { data: Array<{ id: string }> }).data.map((f) => f.id).sort()
  expect('list', JSON.stringify(ids) === JSON.stringify(files.map((f) => f.id).sort()), () => `listed ${ids.length} files, ${files.length} expected`)
  agent.destroy()
  return { seconds, latencies, unexpected, retried, samples, stored: files.length, verified }
}
