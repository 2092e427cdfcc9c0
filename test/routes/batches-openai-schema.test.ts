import OpenAI, { toFile } from 'openai'
import t from 'tap'
import { BATCH_STATUSES } from '../../src/batches/lifecycle.js'
import { KEY_A, startServer } from '../helpers/app.js'
import { BATCH_ENV, postJson, requestLine, setBatchRow, uploadFile } from '../helpers/batches.js'
import { getJson, send } from '../helpers/multipart.js'
import { batchSchemas, openAiAjv } from '../helpers/openai-schemas.js'

/**
 * Every Batch shape the routes answer validates against OpenAI's published schemas
 * (test/fixtures/openai-batches-spec.json, a copy of ../shared/openai-spec/batches.json):
 * strictly for batches with every field filled, in every status; and a fresh batch, whose
 * unset fields are null as OpenAI answers them (its own examples show `"errors": null`,
 * `"in_progress_at": null`), against the schema with null allowed where a field is optional.
 */

t.test('answers validate against OpenAI\'s Batch, ListBatchesResponse and ErrorResponse', async (t) => {
  const batchSchema = batchSchemas.Batch
  if (batchSchema === undefined) throw new Error('no Batch in the fixture')
  const ajv = openAiAjv
  const check = (name: string, value: unknown, what: string) => {
    const valid = ajv.validate({ $ref: `openai#/components/schemas/${name}` }, value)
    t.ok(valid, `${what} is a ${name}: ${JSON.stringify(ajv.errors)}`)
  }

  const server = await startServer(t, BATCH_ENV)
  const fileId = await uploadFile(server.url, KEY_A, requestLine('a'))
  const create = async () => {
    const res = await postJson(`${server.url}/v1/batches`, KEY_A, { input_file_id: fileId, endpoint: '/v1/chat/completions', completion_window: '24h', metadata: { k: 'v' } })
    t.equal(res.status, 200)
    return res.json()
  }

  const fresh = await create()
  // upstream_retries is files-api's one extension (docs/batches.md); the SDKs keep unknown fields.
  t.same(Object.keys(fresh).sort(), [...Object.keys(batchSchema.properties ?? {}), 'upstream_retries'].sort(), 'every property of OpenAI\'s Batch, and upstream_retries')
  check('BatchWithNulls', fresh, 'a fresh batch (unset fields null)')
  t.notOk(ajv.validate({ $ref: 'openai#/components/schemas/Batch' }, fresh), 'the strict schema does refuse the nulls: the filled batches below are the strict test')

  for (const status of BATCH_STATUSES) {
    const batch = await create()
    const at = batch.created_at as number
    await setBatchRow(server.app, batch.id, {
      status,
      errors: JSON.stringify({ object: 'list', data: [{ code: 'invalid_json_line', message: 'line 3: not JSON', param: null, line: 3 }, { code: 'model_not_found', message: 'no such model', param: 'body.model', line: null }] }),
      output_file_id: 'file-01J9Z3N4Q8X7V6T5R4P3M2K1H1',
      error_file_id: 'file-01J9Z3N4Q8X7V6T5R4P3M2K1H2',
      in_progress_at: at + 1,
      finalizing_at: at + 2,
      completed_at: at + 3,
      failed_at: at + 4,
      expired_at: at + 5,
      cancelling_at: at + 6,
      cancelled_at: at + 7,
      request_total: 10,
      request_completed: 7,
      request_failed: 3,
      usage_input_tokens: 100,
      usage_cached_tokens: 20,
      usage_output_tokens: 50,
      usage_reasoning_tokens: 5,
      usage_total_tokens: 150
    })
    const got = (await getJson(`${server.url}/v1/batches/${batch.id}`, KEY_A)).json()
    t.equal(got.status, status)
    t.same(Object.entries(got).filter(([, value]) => value === null), [], `${status}: every field filled`)
    check('Batch', got, `a ${status} batch`)
    check('Batch', (await getJson(`${server.url}/api/v1/batches/${batch.id}`, KEY_A)).json().data, `a ${status} batch (envelope data)`)
    check('Batch', (await send(`${server.url}/v1/batches/${batch.id}/cancel`, 'POST', { authorization: `Bearer ${KEY_A}` })).json(), `a ${status} batch's cancel answer`)
  }

  const list = (await getJson(`${server.url}/v1/batches?limit=3`, KEY_A)).json()
  t.equal(list.data.length, 3)
  check('ListBatchesResponse', list, 'a page of filled batches')
  for (const batch of list.data) check('Batch', batch, 'a listed batch')
  // An empty page answers first_id/last_id null (as files do); OpenAI's schema has them
  // optional, not nullable, so the rest of the page is what is checked here.
  const { first_id: firstId, last_id: lastId, ...empty } = (await getJson(`${server.url}/v1/batches?after=${fresh.id}`, KEY_A)).json()
  t.strictSame([firstId, lastId, empty.data], [null, null, []])
  check('ListBatchesResponse', empty, 'an empty page')

  check('ErrorResponse', (await getJson(`${server.url}/v1/batches/batch_01J9Z3N4Q8X7V6T5R4P3M2K1H0`, KEY_A)).json(), 'a missing batch')
  check('ErrorResponse', (await postJson(`${server.url}/v1/batches`, KEY_A, { input_file_id: fileId, endpoint: '/v1/embeddings', completion_window: '24h' })).json(), 'a refused create')
  check('ErrorResponse', (await getJson(`${server.url}/v1/batches?limit=0`, KEY_A)).json(), 'a bad limit')
})

t.test('the openai Node SDK, unchanged: batches.create, retrieve, list (auto-paging) and cancel', async (t) => {
  const server = await startServer(t, BATCH_ENV)
  const client = new OpenAI({ apiKey: KEY_A, baseURL: `${server.url}/v1`, maxRetries: 0 })
  const file = await client.files.create({ file: await toFile(Buffer.from(`${requestLine('a')}\n${requestLine('b')}\n`), 'in.jsonl'), purpose: 'batch' })
  const created = await client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
    metadata: { run: '1' },
    output_expires_after: { anchor: 'created_at', seconds: 3600 }
  })
  t.equal(created.status, 'validating')
  t.strictSame(created.metadata, { run: '1' })
  t.strictSame(await client.batches.retrieve(created.id), created)
  const more = [await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })]
  more.push(await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }))
  const seen: string[] = []
  for await (const batch of client.batches.list({ limit: 1 })) seen.push(batch.id)
  t.strictSame(seen, [more[1]?.id, more[0]?.id, created.id], 'auto-paging with after= walks every page, newest first')
  const cancelled = await client.batches.cancel(created.id)
  t.equal(cancelled.status, 'cancelling')
  t.type(cancelled.cancelling_at, 'number')
  await t.rejects(client.batches.retrieve('batch_01J9Z3N4Q8X7V6T5R4P3M2K1H0'), { status: 404, code: 'batch_not_found', param: 'batch_id' })
  await t.rejects(client.batches.create({ input_file_id: file.id, endpoint: '/v1/embeddings', completion_window: '24h' }), { status: 400, code: 'endpoint_mismatch', param: 'endpoint' })
})
