import t, { type Test } from 'tap'
import type { BuildAppOptions } from '../../src/app.js'
import { KEY_A, KEY_B, startServer, type TestServer } from '../helpers/app.js'
import { BATCH_ENV, batchRows, postJson, requestLine, setBatchRow, uploadFile } from '../helpers/batches.js'
import { getJson, send } from '../helpers/multipart.js'
import { freshDatabase, NO_POSTGRES_REASON, testDatabaseUrl } from '../helpers/postgres.js'

/**
 * The Batches API routes (issue 10 item 1), over real sockets, on SQLite and PostgreSQL:
 * exact answers of create, retrieve, list and cancel in both families, every refusal of
 * create with nothing left behind. No batch worker runs (BATCH_WORKER=false), so a batch
 * stays where these routes put it; the engine's moves are written into the row directly.
 */

const BATCH_ID = /^batch_[0-9A-HJKMNP-TV-Z]{26}$/
const MISSING_FILE = 'file-01J9Z3N4Q8X7V6T5R4P3M2K1H0'
const MISSING_BATCH = 'batch_01J9Z3N4Q8X7V6T5R4P3M2K1H0'

type Start = (t: Test, env?: Record<string, string>, extra?: Partial<BuildAppOptions>) => Promise<TestServer>

const notFoundBatch = (id: string) => ({ error: { message: `No such Batch object: ${id}`, type: 'invalid_request_error', param: 'batch_id', code: 'batch_not_found' } })
const invalid = (param: string, code = 'invalid_parameter') => ({ error: { type: 'invalid_request_error', param, code } })

async function create (server: TestServer, body: Record<string, unknown>, options: { key?: string, prefix?: string } = {}) {
  return await postJson(`${server.url}${options.prefix ?? '/v1'}/batches`, options.key ?? KEY_A, { endpoint: '/v1/chat/completions', completion_window: '24h', ...body })
}

function suite (name: string, start: Start): void {
  t.test(`${name}: create answers 200 with the batch in validating, in both families; retrieve by GET (and POST on /api/v1)`, async (t) => {
    const server = await start(t)
    const fileId = await uploadFile(server.url, KEY_A, `${requestLine('a', { model: 'gpt-x' })}\n${requestLine('b', { model: 'gpt-x' })}\n`)
    const before = Math.floor(Date.now() / 1000)
    const res = await create(server, { input_file_id: fileId, metadata: { job: 'nightly' }, output_expires_after: { anchor: 'created_at', seconds: 7200 } })
    t.equal(res.status, 200, res.body)
    const batch = res.json()
    t.match(batch.id, BATCH_ID)
    t.ok(batch.created_at >= before - 1 && batch.created_at <= Math.floor(Date.now() / 1000) + 1, 'created_at is now (database clock)')
    t.strictSame(batch, {
      id: batch.id,
      object: 'batch',
      endpoint: '/v1/chat/completions',
      model: 'gpt-x',
      errors: null,
      input_file_id: fileId,
      completion_window: '24h',
      status: 'validating',
      output_file_id: null,
      error_file_id: null,
      created_at: batch.created_at,
      in_progress_at: null,
      expires_at: batch.created_at + 86400,
      finalizing_at: null,
      completed_at: null,
      failed_at: null,
      expired_at: null,
      cancelling_at: null,
      cancelled_at: null,
      request_counts: { total: 0, completed: 0, failed: 0 },
      usage: { input_tokens: 0, input_tokens_details: { cached_tokens: 0 }, output_tokens: 0, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 0 },
      metadata: { job: 'nightly' },
      upstream_retries: 0
    })
    const [row] = await server.app.fileStore.batchDb.selectFrom('batches').select(['project', 'output_expires_after_seconds', 'completion_window']).execute()
    t.strictSame(row && { ...row, output_expires_after_seconds: Number(row.output_expires_after_seconds) },
      { project: 'project-a', output_expires_after_seconds: 7200, completion_window: '24h' }, 'stored for the engine: project and output expiry')

    const got = await getJson(`${server.url}/v1/batches/${batch.id}`, KEY_A)
    t.equal(got.status, 200)
    t.strictSame(got.json(), batch, 'GET /v1 answers the batch bare')
    const wrapped = { success: true, code: '200', message: 'successful', data: batch }
    t.strictSame((await getJson(`${server.url}/api/v1/batches/${batch.id}`, KEY_A)).json(), wrapped, 'GET /api/v1 wraps it')
    const byPost = await send(`${server.url}/api/v1/batches/${batch.id}`, 'POST', { authorization: `Bearer ${KEY_A}` })
    t.equal(byPost.status, 200)
    t.strictSame(byPost.json(), wrapped, 'POST /api/v1/batches/:id is a retrieve')
    const byPostJson = await postJson(`${server.url}/api/v1/batches/${batch.id}`, KEY_A, { ignored: true })
    t.strictSame(byPostJson.json(), wrapped, 'with a JSON body, ignored')
    const noPostOnV1 = await send(`${server.url}/v1/batches/${batch.id}`, 'POST', { authorization: `Bearer ${KEY_A}` })
    t.equal(noPostOnV1.status, 404, 'OpenAI\'s family has no POST retrieve')
    t.equal(noPostOnV1.json().error.code, 'unknown_url')

    const enveloped = await create(server, { input_file_id: fileId }, { prefix: '/api/v1' })
    t.equal(enveloped.status, 200)
    const data = enveloped.json().data
    t.strictSame({ ...enveloped.json(), data: undefined }, { success: true, code: '200', message: 'successful', data: undefined })
    t.match(data.id, BATCH_ID)
    t.not(data.id, batch.id)
    t.equal(data.status, 'validating')
    t.equal(data.metadata, null, 'no metadata: null')
    t.equal(await server.app.fileStore.batchDb.selectFrom('batches').select('id').where('id', '=', data.id).executeTakeFirst().then((r) => r?.id), data.id)

    t.equal((await getJson(`${server.url}/v1/batches/${batch.id}`)).status, 401, 'no key: 401')
  })

  t.test(`${name}: another project's batch, a missing one and a non-id are 404 on every route`, async (t) => {
    const server = await start(t)
    const fileId = await uploadFile(server.url, KEY_A, requestLine('a'))
    const batch = (await create(server, { input_file_id: fileId })).json()
    const rows = await batchRows(server.app)
    for (const id of [batch.id, MISSING_BATCH, 'nope']) {
      const key = id === batch.id ? KEY_B : KEY_A
      const get = await getJson(`${server.url}/v1/batches/${id}`, key)
      t.equal(get.status, 404)
      t.strictSame(get.json(), notFoundBatch(id))
      const cancel = await send(`${server.url}/v1/batches/${id}/cancel`, 'POST', { authorization: `Bearer ${key}` })
      t.equal(cancel.status, 404)
      t.strictSame(cancel.json(), notFoundBatch(id))
      const wrapped = await send(`${server.url}/api/v1/batches/${id}`, 'POST', { authorization: `Bearer ${key}` })
      t.equal(wrapped.status, 404)
      t.strictSame(wrapped.json(), { success: false, code: '404', message: `No such Batch object: ${id}`, data: notFoundBatch(id) })
    }
    t.strictSame(await batchRows(server.app), rows, 'another project\'s cancel changed nothing')
    t.strictSame((await getJson(`${server.url}/v1/batches`, KEY_B)).json(), { object: 'list', data: [], first_id: null, last_id: null, has_more: false })
  })

  t.test(`${name}: create refuses what cannot run, with the family's error shape and param, and creates nothing`, async (t) => {
    const server = await start(t)
    const chat = await uploadFile(server.url, KEY_A, `${requestLine('a')}\n${requestLine('b')}\n`)
    const embeddings = await uploadFile(server.url, KEY_A, requestLine('a', { url: '/v1/embeddings' }))
    const notBatch = await uploadFile(server.url, KEY_A, 'some bytes', { purpose: 'user_data', filename: 'a.bin' })
    const othersFile = await uploadFile(server.url, KEY_B, requestLine('a'))
    const pairs = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']))

    const cases: Array<[string, Record<string, unknown>, number, Record<string, unknown>]> = [
      ['missing file', { input_file_id: MISSING_FILE }, 404,
        { error: { message: `No such File object: ${MISSING_FILE}`, type: 'invalid_request_error', param: 'input_file_id', code: 'file_not_found' } }],
      ['another project\'s file', { input_file_id: othersFile }, 404,
        { error: { message: `No such File object: ${othersFile}`, type: 'invalid_request_error', param: 'input_file_id', code: 'file_not_found' } }],
      ['not a file id', { input_file_id: 'abc' }, 404, invalid('input_file_id', 'file_not_found')],
      ['wrong purpose', { input_file_id: notBatch }, 400,
        { error: { message: `File ${notBatch} has purpose 'user_data'; a batch runs a file uploaded with purpose 'batch'.`, type: 'invalid_request_error', param: 'input_file_id', code: 'invalid_file_purpose' } }],
      ['url is not the endpoint', { input_file_id: embeddings }, 400,
        { error: { message: `The requests of file ${embeddings} use url '/v1/embeddings', not the batch's endpoint '/v1/chat/completions'; create the batch with endpoint '/v1/embeddings'.`, type: 'invalid_request_error', param: 'endpoint', code: 'endpoint_mismatch' } }],
      ['endpoint not allowed', { input_file_id: chat, endpoint: '/v1/images/generations' }, 400, invalid('endpoint')],
      ['no input_file_id', { input_file_id: undefined }, 400, invalid('input_file_id')],
      ['completion_window 48h', { input_file_id: chat, completion_window: '48h' }, 400, invalid('completion_window')],
      ['17 metadata pairs', { input_file_id: chat, metadata: pairs(17) }, 400, invalid('metadata')],
      ['a metadata key of 65 characters', { input_file_id: chat, metadata: { ['k'.repeat(65)]: 'v' } }, 400,
        { error: { message: 'Invalid body parameter \'metadata\': a key must NOT have more than 64 characters', param: 'metadata' } }],
      ['a metadata value of 513 characters', { input_file_id: chat, metadata: { k: 'v'.repeat(513) } }, 400, invalid('metadata.k')],
      ['a metadata value not a string', { input_file_id: chat, metadata: { k: { nested: true } } }, 400, invalid('metadata.k')],
      ['output_expires_after below an hour', { input_file_id: chat, output_expires_after: { anchor: 'created_at', seconds: 3599 } }, 400, invalid('output_expires_after.seconds')],
      ['output_expires_after past 30 days', { input_file_id: chat, output_expires_after: { anchor: 'created_at', seconds: 2592001 } }, 400, invalid('output_expires_after.seconds')],
      ['output_expires_after with another anchor', { input_file_id: chat, output_expires_after: { anchor: 'now', seconds: 3600 } }, 400, invalid('output_expires_after.anchor')],
      ['output_expires_after without seconds', { input_file_id: chat, output_expires_after: { anchor: 'created_at' } }, 400, invalid('output_expires_after.seconds')]
    ]
    for (const [what, body, status, expected] of cases) {
      const res = await create(server, body)
      t.equal(res.status, status, `${what}: ${res.body}`)
      t.match(res.json(), expected, what)
      t.type(res.json().error.message, 'string')
    }
    const wrapped = await create(server, { input_file_id: embeddings }, { prefix: '/api/v1' })
    t.equal(wrapped.status, 400)
    t.match(wrapped.json(), { success: false, code: '400', message: /use url '\/v1\/embeddings'/, data: { error: { param: 'endpoint', code: 'endpoint_mismatch' } } })
    const badJson = await send(`${server.url}/v1/batches`, 'POST', { 'content-type': 'application/json', authorization: `Bearer ${KEY_A}` }, Buffer.from('{"input_file_id":'))
    t.equal(badJson.status, 400, 'a body that is not JSON')
    t.strictSame(await batchRows(server.app), [], 'no refusal left a batch row')

    t.equal((await create(server, { input_file_id: embeddings, endpoint: '/v1/embeddings', metadata: pairs(16) })).status, 200, '16 pairs and a matching endpoint: created')
    const nullMetadata = await create(server, { input_file_id: chat, metadata: null })
    t.equal(nullMetadata.status, 200, 'metadata null: created')
    t.equal(nullMetadata.json().metadata, null)
    t.equal((await batchRows(server.app)).length, 2, 'exactly the two accepted creates left rows')
  })

  t.test(`${name}: no upstream configured: 503 naming the settings, nothing created`, async (t) => {
    const server = await start(t, { UPSTREAM_BASE_URL: '' })
    const fileId = await uploadFile(server.url, KEY_A, requestLine('a'))
    const message = 'No upstream is configured to run batches: set UPSTREAM_BASE_URL (an OpenAI-compatible base URL such as http://vllm:8000/v1), or UPSTREAM_MODELS (model=baseUrl pairs). No batch was created.'
    const res = await create(server, { input_file_id: fileId })
    t.equal(res.status, 503)
    t.strictSame(res.json(), { error: { message, type: 'server_error', param: null, code: 'upstream_not_configured' } })
    const wrapped = await create(server, { input_file_id: fileId }, { prefix: '/api/v1' })
    t.equal(wrapped.status, 503)
    t.strictSame(wrapped.json(), { success: false, code: '503', message, data: { error: { message, type: 'server_error', param: null, code: 'upstream_not_configured' } } })
    t.strictSame(await batchRows(server.app), [])
    t.strictSame((await getJson(`${server.url}/v1/batches`, KEY_A)).json().data, [], 'listing still works')
  })

  t.test(`${name}: a model map without a fallback refuses a model it does not route`, async (t) => {
    const server = await start(t, { UPSTREAM_BASE_URL: '', UPSTREAM_MODELS: 'served=http://127.0.0.1:9/v1' })
    const unrouted = await uploadFile(server.url, KEY_A, requestLine('a', { model: 'elsewhere' }))
    const res = await create(server, { input_file_id: unrouted })
    t.equal(res.status, 400)
    t.strictSame(res.json(), {
      error: {
        message: `No upstream serves model "elsewhere", the model of the requests of file ${unrouted}: add it to UPSTREAM_MODELS, or set UPSTREAM_BASE_URL to serve every other model.`,
        type: 'invalid_request_error',
        param: 'input_file_id',
        code: 'model_not_routed'
      }
    })
    t.strictSame(await batchRows(server.app), [])
    const routed = await uploadFile(server.url, KEY_A, requestLine('a', { model: 'served' }))
    const ok = await create(server, { input_file_id: routed })
    t.equal(ok.status, 200)
    t.equal(ok.json().model, 'served')
  })

  t.test(`${name}: an expired input file is 400, not 404`, async (t) => {
    let clock = Date.now()
    const server = await start(t, { EXPIRY_SWEEP_INTERVAL_MS: '0' }, { now: () => clock })
    const fileId = await uploadFile(server.url, KEY_A, requestLine('a'), { expiresAfterSeconds: 3600 })
    clock += 3600 * 1000
    const res = await create(server, { input_file_id: fileId })
    t.equal(res.status, 400)
    t.strictSame(res.json(), {
      error: { message: `File ${fileId} has expired; upload the requests again and create the batch with the new file.`, type: 'invalid_request_error', param: 'input_file_id', code: 'file_expired' }
    })
    t.strictSame(await batchRows(server.app), [])
    await server.app.sweepExpired()
    t.equal((await create(server, { input_file_id: fileId })).status, 404, 'once swept, the file is missing')
  })

  t.test(`${name}: list: keyset pages newest first, after, has_more, first_id/last_id, limit bounds`, async (t) => {
    const server = await start(t)
    const fileId = await uploadFile(server.url, KEY_A, requestLine('a'))
    const ids: string[] = []
    for (let i = 0; i < 5; i++) ids.push((await create(server, { input_file_id: fileId, metadata: { n: String(i) } })).json().id)
    await create(server, { input_file_id: await uploadFile(server.url, KEY_B, requestLine('a')) }, { key: KEY_B })
    const newestFirst = [...ids].reverse()
    t.strictSame([...ids].sort(), ids, 'ids are in creation order')

    const list = async (query: string, prefix = '/v1') => await getJson(`${server.url}${prefix}/batches${query}`, KEY_A)
    const pages: string[][] = []
    let after: string | undefined
    const expectMore = [true, true, false]
    for (let page = 0; page < 3; page++) {
      const res = await list(`?limit=2${after === undefined ? '' : `&after=${after}`}`)
      t.equal(res.status, 200)
      const body = res.json()
      const pageIds = body.data.map((b: { id: string }) => b.id)
      t.strictSame(pageIds, newestFirst.slice(page * 2, page * 2 + 2), `page ${page + 1}`)
      t.equal(body.object, 'list')
      t.equal(body.first_id, pageIds[0])
      t.equal(body.last_id, pageIds.at(-1))
      t.equal(body.has_more, expectMore[page], `page ${page + 1}: has_more`)
      pages.push(pageIds)
      after = body.last_id
    }
    t.strictSame(pages.flat(), newestFirst, 'every batch once')
    t.strictSame((await list(`?after=${ids[0]}`)).json(), { object: 'list', data: [], first_id: null, last_id: null, has_more: false }, 'after the oldest: an empty page')

    const all = (await list('')).json()
    t.strictSame(all.data.map((b: { id: string }) => b.id), newestFirst, 'default limit (20) holds all five, only project-a\'s')
    t.strictSame(all.data[0], (await getJson(`${server.url}/v1/batches/${ids[4]}`, KEY_A)).json(), 'a listed batch is the retrieved one')
    const wrapped = (await list('?limit=1', '/api/v1')).json()
    t.strictSame(wrapped, { success: true, code: '200', message: 'successful', data: { object: 'list', data: [all.data[0]], first_id: ids[4], last_id: ids[4], has_more: true } })
    t.equal((await list('?limit=100')).status, 200)

    for (const [query, param] of [['?limit=0', 'limit'], ['?limit=101', 'limit'], ['?limit=x', 'limit'], ['?after=file-01J9Z3N4Q8X7V6T5R4P3M2K1H0', 'after']] as const) {
      const res = await list(query)
      t.equal(res.status, 400, query)
      t.match(res.json(), invalid(param), query)
    }
    const bad = await list('?limit=101', '/api/v1')
    t.match(bad.json(), { success: false, code: '400', data: { error: { param: 'limit' } } })
  })

  t.test(`${name}: counts and usage are current: the engine's recorded results are added`, async (t) => {
    const server = await start(t)
    const fileId = await uploadFile(server.url, KEY_A, requestLine('a'))
    const id = (await create(server, { input_file_id: fileId })).json().id
    const db = server.app.fileStore.batchDb
    await setBatchRow(server.app, id, { status: 'in_progress', request_total: 5, request_completed: 1, usage_input_tokens: 10, usage_output_tokens: 4, usage_total_tokens: 14 })
    await db.insertInto('batch_chunks').values({ batch_id: id, seq: 0, byte_start: 0, byte_end: 10, line_start: 1, line_end: 6 }).execute()
    const result = (line: number, kind: string, tokens: number) => ({
      batch_id: id, line, seq: 0, kind, custom_id: String(line), result: '{}', recorded_epoch: 1,
      usage_input_tokens: tokens, usage_cached_tokens: 1, usage_output_tokens: tokens, usage_reasoning_tokens: 0, usage_total_tokens: 2 * tokens
    })
    await db.insertInto('batch_results').values([result(2, 'output', 3), result(3, 'output', 2), result(4, 'error', 0)]).execute()
    const expected = {
      request_counts: { total: 5, completed: 3, failed: 1 },
      usage: { input_tokens: 15, input_tokens_details: { cached_tokens: 3 }, output_tokens: 9, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 24 }
    }
    t.match((await getJson(`${server.url}/v1/batches/${id}`, KEY_A)).json(), { status: 'in_progress', ...expected })
    t.match((await getJson(`${server.url}/v1/batches`, KEY_A)).json().data[0], { id, ...expected }, 'list counts the same')
  })

  t.test(`${name}: cancel: validating or in_progress → cancelling; later statuses answered as they are`, async (t) => {
    const server = await start(t)
    const fileId = await uploadFile(server.url, KEY_A, requestLine('a'))
    const make = async () => (await create(server, { input_file_id: fileId })).json()
    const cancel = async (id: string, prefix = '/v1', key = KEY_A) => await send(`${server.url}${prefix}/batches/${id}/cancel`, 'POST', { authorization: `Bearer ${key}` })

    const validating = await make()
    const res = await cancel(validating.id)
    t.equal(res.status, 200)
    const cancelling = res.json()
    t.equal(cancelling.status, 'cancelling')
    t.ok(Number.isInteger(cancelling.cancelling_at) && cancelling.cancelling_at >= validating.created_at, 'cancelling_at stamped')
    t.strictSame(cancelling, { ...validating, status: 'cancelling', cancelling_at: cancelling.cancelling_at }, 'nothing else changed')
    const again = await cancel(validating.id, '/api/v1')
    t.equal(again.status, 200, 'a second cancel: 200')
    t.strictSame(again.json(), { success: true, code: '200', message: 'successful', data: cancelling }, 'unchanged, wrapped')

    const running = await make()
    await setBatchRow(server.app, running.id, { status: 'in_progress', in_progress_at: running.created_at, request_total: 1 })
    const stopped = (await cancel(running.id)).json()
    t.match(stopped, { status: 'cancelling', in_progress_at: running.created_at, request_counts: { total: 1 } })
    t.type(stopped.cancelling_at, 'number')

    for (const status of ['finalizing', 'completed', 'failed', 'expired', 'cancelled'] as const) {
      const batch = await make()
      await setBatchRow(server.app, batch.id, { status, [`${status}_at`]: batch.created_at + 5 })
      const before = (await getJson(`${server.url}/v1/batches/${batch.id}`, KEY_A)).json()
      t.equal(before.status, status)
      const answer = await cancel(batch.id)
      t.equal(answer.status, 200, `${status}: 200`)
      t.strictSame(answer.json(), before, `${status}: answered as it is`)
      t.strictSame((await getJson(`${server.url}/v1/batches/${batch.id}`, KEY_A)).json(), before, `${status}: and stays so`)
    }

    const other = await cancel(running.id, '/v1', KEY_B)
    t.equal(other.status, 404)
    t.strictSame(other.json(), notFoundBatch(running.id))
  })
}

suite('sqlite', async (t, env = {}, extra = {}) => await startServer(t, { ...BATCH_ENV, ...env }, extra))

const serverUrl = testDatabaseUrl()
if (serverUrl === undefined) {
  t.test('postgres', { skip: NO_POSTGRES_REASON }, async () => {})
} else {
  suite('postgres', async (t, env = {}, extra = {}) => await startServer(t, { ...BATCH_ENV, DATABASE_URL: await freshDatabase(t, serverUrl), ...env }, extra))
}
