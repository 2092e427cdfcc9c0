import { createReadStream } from 'node:fs'
import OpenAI, { toFile } from 'openai'
import { VERSION } from 'openai/version'
import t from 'tap'
import { KEY_A, startServer } from '../helpers/app.js'
import { assertBatchLifecycle, SKIP_NO_LITELLM, type BatchLifecycleResult, type SdkError } from './helpers/batches.js'
import { SAMPLE } from './helpers/lifecycle.js'

const upstream = process.env.LITELLM_BASE_URL

async function errorOf (call: () => Promise<unknown>): Promise<SdkError> {
  try {
    await call()
  } catch (e) {
    if (e instanceof OpenAI.APIError) {
      const body = (e.error ?? {}) as { code?: string | null, param?: string | null, message?: string | null }
      return { class: e.constructor.name, status: e.status ?? null, code: body.code ?? null, param: body.param ?? null, message: body.message ?? null }
    }
    throw e
  }
  return { class: 'none', status: null, code: null, param: null, message: null }
}

t.test('the official openai Node SDK runs the seed\'s file as a batch against LiteLLM, unchanged', { skip: upstream === undefined ? SKIP_NO_LITELLM : false }, async (t) => {
  const server = await startServer(t, { UPSTREAM_BASE_URL: upstream!, UPSTREAM_API_KEY: process.env.LITELLM_MASTER_KEY ?? '', BATCH_POLL_INTERVAL_MS: '100' })
  for (const prefix of ['/v1']) {
    const client = new OpenAI({ baseURL: `${server.url}${prefix}`, apiKey: KEY_A, maxRetries: 0 })
    const file = await client.files.create({ file: createReadStream(SAMPLE), purpose: 'batch' })
    const created = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h', metadata: { run: 'node-sdk' } })
    let batch = created
    let polls = 0
    while (!['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) {
      await new Promise((resolve) => setTimeout(resolve, 200))
      if (++polls > 300) throw new Error(`the batch did not finish in 60 s: ${batch.status}`)
      batch = await client.batches.retrieve(created.id)
    }
    const output = await (await client.files.content(batch.output_file_id!)).text()
    const listed: string[] = []
    for await (const b of client.batches.list({ limit: 1 })) listed.push(b.id)
    const cancelled = await client.batches.cancel(batch.id)
    const userData = await client.files.create({ file: await toFile(Buffer.from('{}\n'), 'notes.jsonl'), purpose: 'user_data' })
    const result: BatchLifecycleResult = {
      sdk: `openai-node ${VERSION}`,
      file: file as unknown as Record<string, unknown>,
      created: created as unknown as Record<string, unknown>,
      final: batch as unknown as Record<string, unknown>,
      polls,
      output,
      listed,
      cancel_completed: cancelled as unknown as Record<string, unknown>,
      errors: {
        not_found: await errorOf(async () => client.batches.retrieve('batch_00000000000000000000000000')),
        wrong_purpose: await errorOf(async () => client.batches.create({ input_file_id: userData.id, endpoint: '/v1/chat/completions', completion_window: '24h' })),
        wrong_endpoint: await errorOf(async () => client.batches.create({ input_file_id: file.id, endpoint: '/v1/embeddings', completion_window: '24h' }))
      }
    }
    t.comment(`${result.sdk}: batch completed after ${polls} polls`)
    assertBatchLifecycle(t, result, { notFound: 'NotFoundError', badRequest: 'BadRequestError' })
  }
})
