import type { FastifyInstance } from 'fastify'
import { getBatch, insertBatch, type BatchRecord } from '../../../src/batches/batch-store.js'
import { newBatchId } from '../../../src/ids.js'
import { KEY_A } from '../../helpers/app.js'

export const PROJECT_A = 'project-a'

/** `n` chat completion lines for `model`, custom ids `req-1`…; line i asks for `prompt-i`. */
export function chatLines (n: number, model = 'mock-chat', from = 1): string {
  let out = ''
  for (let i = from; i < from + n; i++) {
    out += JSON.stringify({ custom_id: `req-${i}`, method: 'POST', url: '/v1/chat/completions', body: { model, messages: [{ role: 'user', content: `prompt-${i}` }] } }) + '\n'
  }
  return out
}

/** Uploads `text` as a batch file over the real socket; returns its id. */
export async function uploadBatchFile (url: string, text: string, key = KEY_A): Promise<string> {
  const form = new FormData()
  form.append('purpose', 'batch')
  form.append('file', new Blob([text]), 'input.jsonl')
  const res = await fetch(`${url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: form })
  const body = await res.json() as { id?: string }
  if (res.status !== 200 || body.id === undefined) throw new Error(`upload answered ${res.status}: ${JSON.stringify(body)}`)
  return body.id
}

/** A batch row in `validating`, as the create route makes it; the engine takes it from there. */
export async function createBatchRow (app: FastifyInstance, inputFileId: string, opts: { windowSeconds?: number, project?: string } = {}): Promise<BatchRecord> {
  return await insertBatch(app.fileStore.batchDb, app.fileStore.dialect, {
    id: newBatchId(),
    project: opts.project ?? PROJECT_A,
    endpoint: '/v1/chat/completions',
    inputFileId,
    completionWindow: '24h',
    completionWindowSeconds: opts.windowSeconds ?? 86400
  })
}

/** Polls the batch until `done` says so (or throws after `timeoutMs`). */
export async function waitForBatch (app: FastifyInstance, id: string, done: (b: BatchRecord) => boolean, timeoutMs = 60_000): Promise<BatchRecord> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const batch = await getBatch(app.fileStore.batchDb, id)
    if (batch !== null && done(batch)) return batch
    if (Date.now() > until) throw new Error(`batch ${id} did not get there in ${timeoutMs} ms: ${JSON.stringify(batch)}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

export const isTerminal = (b: BatchRecord): boolean => ['completed', 'failed', 'expired', 'cancelled'].includes(b.status)

/** The content of a file over the real socket, as JSON lines. */
export async function fileLines (url: string, fileId: string, key = KEY_A): Promise<Array<Record<string, unknown>>> {
  const res = await fetch(`${url}/v1/files/${fileId}/content`, { headers: { authorization: `Bearer ${key}` } })
  if (res.status !== 200) throw new Error(`content answered ${res.status}`)
  const text = await res.text()
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>)
}

/**
 * The batch parts left in the store, once the finalizer is done with them: it removes
 * them just after recording the batch's terminal status, so a reader that saw the status
 * may be a moment early. Waits up to `timeoutMs` for none to be left.
 */
export async function partsLeft (app: FastifyInstance, timeoutMs = 5000): Promise<string[]> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const parts: string[] = []
    for await (const blob of app.blobStore.list('files/batch-parts/')) parts.push(blob.key)
    if (parts.length === 0 || Date.now() > until) return parts
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
