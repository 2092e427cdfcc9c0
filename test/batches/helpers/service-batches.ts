import { setTimeout as sleep } from 'node:timers/promises'
import { postJson, uploadFile } from '../../helpers/batches.js'

/**
 * Batches driven through the public routes of a service running as its own process
 * (test/helpers/process.ts): upload, create, poll until terminal, read /metrics. What
 * the timing tests (speed-up, fairness) measure is what a client would see.
 */

export interface BatchObject {
  id: string
  status: string
  request_counts: { total: number, completed: number, failed: number }
}

export async function getBatch (url: string, key: string, id: string): Promise<BatchObject> {
  const res = await fetch(`${url}/v1/batches/${id}`, { headers: { authorization: `Bearer ${key}` } })
  if (res.status !== 200) throw new Error(`retrieve ${id} answered ${res.status}: ${await res.text()}`)
  return await res.json() as BatchObject
}

/** Uploads `lines` as a batch file; returns the file id (the upload is not part of any timing). */
export async function uploadLines (url: string, key: string, lines: string): Promise<string> {
  return await uploadFile(url, key, lines)
}

/** POST /v1/batches; returns the batch and the moment just before the request went out. */
export async function createBatch (url: string, key: string, inputFileId: string): Promise<{ id: string, startedAt: number }> {
  const startedAt = performance.now()
  const res = await postJson(`${url}/v1/batches`, key, { input_file_id: inputFileId, endpoint: '/v1/chat/completions', completion_window: '24h' })
  if (res.status !== 200) throw new Error(`create answered ${res.status}: ${res.body}`)
  return { id: res.json().id as string, startedAt }
}

const TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled'])

/** Polls every 50 ms until the batch is terminal; returns it and when it was first seen so (performance.now()). */
export async function waitTerminal (url: string, key: string, id: string, timeoutMs: number): Promise<{ batch: BatchObject, at: number }> {
  const until = performance.now() + timeoutMs
  for (;;) {
    const batch = await getBatch(url, key, id)
    if (TERMINAL.has(batch.status)) return { batch, at: performance.now() }
    if (performance.now() > until) throw new Error(`batch ${id} not finished after ${timeoutMs} ms: ${JSON.stringify(batch)}`)
    await sleep(50)
  }
}

/** Upload, create, wait: the batch and its time from create to terminal, in ms. */
export async function timedBatch (url: string, key: string, lines: string, timeoutMs: number): Promise<{ batch: BatchObject, ms: number }> {
  const fileId = await uploadLines(url, key, lines)
  const { id, startedAt } = await createBatch(url, key, fileId)
  const { batch, at } = await waitTerminal(url, key, id, timeoutMs)
  return { batch, ms: at - startedAt }
}

/**
 * One scrape of /metrics: each of `names` (a counter, or a histogram's `_sum` or `_count`)
 * summed over every label set. A refused scrape (a METRICS_TOKEN) or a value that is not a
 * number throws, rather than reading as 0.
 */
export async function metricSums (url: string, names: readonly string[]): Promise<number[]> {
  const res = await fetch(`${url}/metrics`)
  if (!res.ok) throw new Error(`GET /metrics answered ${res.status}`)
  const text = await res.text()
  return names.map((name) => {
    let sum = 0
    for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) {
      const value = Number(m[1])
      if (!Number.isFinite(value)) throw new Error(`${name}: ${m[1]} is not a number`)
      sum += value
    }
    return sum
  })
}

/** This replica's upstream requests sent, summed over upstreams (files_api_batch_upstream_requests_total). */
export async function upstreamRequestsSent (url: string): Promise<number> {
  const [sent] = await metricSums(url, ['files_api_batch_upstream_requests_total'])
  return sent!
}
