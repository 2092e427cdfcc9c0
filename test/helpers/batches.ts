import type { FastifyInstance } from 'fastify'
import type { Updateable } from 'kysely'
import type { BatchesTable } from '../../src/batches/tables.js'
import { postMultipart, send, type RawResponse } from './multipart.js'

/** Settings for a test server that creates batches and runs none (no worker, an upstream never reached). */
export const BATCH_ENV = { UPSTREAM_BASE_URL: 'http://127.0.0.1:9/v1', BATCH_WORKER: 'false' }

export function requestLine (id: string, options: { url?: string, model?: string } = {}): string {
  const url = options.url ?? '/v1/chat/completions'
  const body = url === '/v1/embeddings'
    ? { model: options.model ?? 'm', input: 'x' }
    : { model: options.model ?? 'm', messages: [{ role: 'user', content: 'x' }] }
  return JSON.stringify({ custom_id: id, method: 'POST', url, body })
}

/** Uploads a file through the route (a real socket) and returns its id; throws unless it was stored. */
export async function uploadFile (baseUrl: string, key: string, content: string, options: { purpose?: string, filename?: string, expiresAfterSeconds?: number } = {}): Promise<string> {
  const res = await postMultipart(`${baseUrl}/v1/files`, [
    { name: 'purpose', value: options.purpose ?? 'batch' },
    ...(options.expiresAfterSeconds === undefined
      ? []
      : [{ name: 'expires_after[anchor]', value: 'created_at' }, { name: 'expires_after[seconds]', value: String(options.expiresAfterSeconds) }]),
    { name: 'file', filename: options.filename ?? 'requests.jsonl', content: Buffer.from(content) }
  ], { key })
  if (res.status !== 200) throw new Error(`upload failed: ${res.status} ${res.body}`)
  return res.json().id as string
}

export async function postJson (url: string, key: string | undefined, body: unknown): Promise<RawResponse> {
  return send(url, 'POST', {
    'content-type': 'application/json',
    ...(key === undefined ? {} : { authorization: `Bearer ${key}` })
  }, Buffer.from(JSON.stringify(body)))
}

/** Every batch row, as stored: what a refused create must leave unchanged. */
export async function batchRows (app: FastifyInstance): Promise<unknown[]> {
  return await app.fileStore.batchDb.selectFrom('batches').selectAll().orderBy('id').execute()
}

/** Writes a batch's row directly, as the engine would (the engine is not part of these tests). */
export async function setBatchRow (app: FastifyInstance, id: string, fields: Updateable<BatchesTable>): Promise<void> {
  await app.fileStore.batchDb.updateTable('batches').set(fields).where('id', '=', id).execute()
}
