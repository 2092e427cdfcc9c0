/**
 * TEST DOUBLE: an OpenAI-compatible upstream of our own, a real HTTP server on
 * 127.0.0.1 (port 0). It exists to inject the faults a real inference server cannot be
 * made to show on demand (issue 10 item 8): latency, 429 with Retry-After, 5xx, refused
 * connections for a while (the listener is closed and reopened on the same port), a
 * 400 for chosen models, answers of a chosen size. It counts requests, sockets, and
 * the most requests in flight at once, so tests can assert pooling and concurrency.
 * The real server no one here wrote (LiteLLM) is used elsewhere.
 */
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export interface Fault {
  /** Answer with this status instead of 200. */
  status?: number
  retryAfter?: string
  /** Delay before the headers. */
  latencyMs?: number
  /** Pad the answer's JSON to at least this many bytes. */
  bodyBytes?: number
  /** Send the headers, then stall the body for this long. */
  stallBodyMs?: number
}

export interface SeenRequest {
  method: string
  url: string
  authorization: string | undefined
  body: unknown
  /** Date.now() when the request's body had arrived. */
  at: number
  /** Date.now() when its answer was complete or its socket closed; undefined while in flight. */
  finishedAt?: number
  /** True when the socket closed before the answer was complete (the client aborted). */
  aborted?: boolean
}

export interface ControllableUpstream {
  readonly url: string
  readonly port: number
  readonly requests: SeenRequest[]
  /** Sockets accepted since start (a pooled client keeps this small). */
  connections: () => number
  /** Sockets closed by the client or by us before the answer was complete. */
  abortedRequests: () => number
  inFlight: () => number
  maxInFlight: () => number
  /** Next answers, in order; once used up, `fallback` (default: 200). */
  queue: (...faults: Fault[]) => void
  setFallback: (fault: Fault) => void
  /** A hard capacity, as a saturated inference server has: a request arriving while `n` are in flight is answered 429 at once (with `retryAfter` if given). */
  limitConcurrency: (n: number, retryAfter?: string) => void
  /** Requests answered 429 by the hard capacity. */
  overCapacity: () => number
  /** When each of those was answered (Date.now()). */
  overCapacityTimes: () => number[]
  /** Each request after this, not served from `queue`, gets `fault` with probability `rate` (random: a seeded source). */
  storm: (rate: number, fault: Fault, random: () => number) => void
  /** Models answered with 400 (a bad request the upstream refuses, a final error). */
  rejectModels: (...models: string[]) => void
  /** Close the listener and every socket; connections are refused until `reopen`. */
  refuse: () => Promise<void>
  reopen: () => Promise<void>
  close: () => Promise<void>
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

function chatCompletion (model: unknown, padTo: number): string {
  const answer = { id: 'chatcmpl-test', object: 'chat.completion', model, choices: [{ index: 0, message: { role: 'assistant', content: '' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }
  const base = JSON.stringify(answer).length
  answer.choices[0]!.message.content = 'x'.repeat(Math.max(0, padTo - base))
  return JSON.stringify(answer)
}

export async function startControllableUpstream (): Promise<ControllableUpstream> {
  const requests: SeenRequest[] = []
  const sockets = new Set<Socket>()
  const pending: Fault[] = []
  const rejected = new Set<string>()
  let fallback: Fault = {}
  let stormy: { rate: number, fault: Fault, random: () => number } | null = null
  let capacity: { n: number, retryAfter: string | undefined } | null = null
  const overCapacityAt: number[] = []
  let connections = 0
  let aborted = 0
  let inFlight = 0
  let maxInFlight = 0
  let counter = 0

  const server = http.createServer((req, res) => {
    if (capacity !== null && inFlight >= capacity.n) {
      overCapacityAt.push(Date.now())
      req.resume()
      const headers: Record<string, string> = { 'content-type': 'application/json' }
      if (capacity.retryAfter !== undefined) headers['retry-after'] = capacity.retryAfter
      res.writeHead(429, headers).end(JSON.stringify({ error: { message: 'over capacity', type: 'rate_limit_error', param: null, code: null } }))
      return
    }
    inFlight += 1
    maxInFlight = Math.max(maxInFlight, inFlight)
    let done = false
    const finish = (): void => { if (!done) { done = true; inFlight -= 1 } }
    let seen: SeenRequest | undefined
    res.on('close', () => {
      if (!res.writableFinished) aborted += 1
      if (seen !== undefined) {
        seen.finishedAt = Date.now()
        seen.aborted = !res.writableFinished
      }
      finish()
    })
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      void (async () => {
        let body: unknown = null
        try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')) } catch {}
        seen = { method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, body, at: Date.now() }
        requests.push(seen)
        const fault = pending.shift() ?? (stormy !== null && stormy.random() < stormy.rate ? stormy.fault : fallback)
        if (fault.latencyMs !== undefined) await sleep(fault.latencyMs)
        if (res.destroyed) return
        counter += 1
        const headers: Record<string, string> = { 'content-type': 'application/json', 'x-request-id': `req_${counter}` }
        const model = typeof body === 'object' && body !== null && 'model' in body ? body.model : undefined
        if (typeof model === 'string' && rejected.has(model)) {
          res.writeHead(400, headers).end(JSON.stringify({ error: { message: `model ${model} is not served`, type: 'invalid_request_error', param: 'model', code: null } }))
          return
        }
        const status = fault.status ?? 200
        if (fault.retryAfter !== undefined) headers['retry-after'] = fault.retryAfter
        const text = status < 300
          ? chatCompletion(model, fault.bodyBytes ?? 0)
          : JSON.stringify({ error: { message: `injected ${status}`, type: 'server_error', param: null, code: null } })
        if (fault.stallBodyMs !== undefined) {
          res.writeHead(status, headers)
          res.write(text.slice(0, 1))
          await sleep(fault.stallBodyMs)
          if (!res.destroyed) res.end(text.slice(1))
          return
        }
        res.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(text)) }).end(text)
      })()
    })
  })
  server.on('connection', (socket: Socket) => {
    connections += 1
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port

  async function refuse (): Promise<void> {
    const closed = new Promise<void>((resolve) => server.close(() => { resolve() }))
    for (const socket of sockets) socket.destroy()
    await closed
  }

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    connections: () => connections,
    abortedRequests: () => aborted,
    inFlight: () => inFlight,
    maxInFlight: () => maxInFlight,
    queue: (...faults) => { pending.push(...faults) },
    setFallback: (fault) => { fallback = fault },
    storm: (rate, fault, random) => { stormy = { rate, fault, random } },
    limitConcurrency: (n, retryAfter) => { capacity = { n, retryAfter } },
    overCapacity: () => overCapacityAt.length,
    overCapacityTimes: () => [...overCapacityAt],
    rejectModels: (...models) => { for (const m of models) rejected.add(m) },
    refuse,
    reopen: async () => { await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve)) },
    close: async () => { if (server.listening) await refuse() }
  }
}
