import { readFile } from 'node:fs/promises'
import { validate } from '@readme/openapi-parser'
import { Ajv } from 'ajv'
import OpenAI, { toFile } from 'openai'
import t from 'tap'
import { KEY_A, startServer } from '../helpers/app.js'
import { getJson, send } from '../helpers/multipart.js'

t.test('/openapi.json is a valid OpenAPI 3.1 document covering every route, body, query and header', async (t) => {
  const server = await startServer(t)
  const res = await getJson(`${server.url}/openapi.json`)
  t.equal(res.status, 200)
  const doc = res.json()
  const result = await validate(structuredClone(doc))
  t.ok(result.valid, `validates: ${JSON.stringify(result.valid ? [] : result.errors)}`)
  t.equal(doc.openapi, '3.1.0')

  for (const prefix of ['/v1', '/api/v1']) {
    const paths = doc.paths
    t.same(Object.keys(paths[`${prefix}/files`]).sort(), ['get', 'post'])
    t.same(Object.keys(paths[`${prefix}/files/{file_id}`]).sort(), ['delete', 'get'])
    t.same(Object.keys(paths[`${prefix}/files/{file_id}/content`]), ['get'])
    const upload = paths[`${prefix}/files`].post
    const multipart = upload.requestBody.content['multipart/form-data'].schema
    t.same(multipart.required.sort(), ['file', 'purpose'])
    t.equal(multipart.properties.file.format, 'binary')
    t.ok(upload.responses['400'] && upload.responses['413'] && upload.responses['401'], 'errors documented')
    const list = paths[`${prefix}/files`].get
    t.same(list.parameters.map((p: { name: string }) => p.name).sort(), ['after', 'limit', 'order', 'purpose'])
    const content = paths[`${prefix}/files/{file_id}/content`].get
    t.ok(content.parameters.some((p: { in: string, name: string }) => p.in === 'header' && p.name === 'range'), 'Range header documented')
    t.ok(content.responses['206'] && content.responses['416'], 'partial and unsatisfiable answers documented')
  }
  for (const prefix of ['/v1', '/api/v1']) {
    const paths = doc.paths
    t.same(Object.keys(paths[`${prefix}/batches`]).sort(), ['get', 'post'])
    t.same(Object.keys(paths[`${prefix}/batches/{batch_id}`]).sort(), prefix === '/v1' ? ['get'] : ['get', 'post'], 'a retrieve by POST on /api/v1 only')
    t.same(Object.keys(paths[`${prefix}/batches/{batch_id}/cancel`]), ['post'])
    const create = paths[`${prefix}/batches`].post
    const body = create.requestBody.content['application/json'].schema
    t.same(body.required.sort(), ['completion_window', 'endpoint', 'input_file_id'])
    t.same(body.properties.endpoint.enum, ['/v1/chat/completions', '/v1/embeddings', '/v1/completions', '/v1/responses', '/v1/moderations'], 'endpoint lists BATCH_ALLOWED_URLS')
    t.ok(create.responses['400'] && create.responses['404'] && create.responses['503'], 'refusals documented')
    t.same(paths[`${prefix}/batches`].get.parameters.map((p: { name: string }) => p.name).sort(), ['after', 'limit'])
    t.same(create.tags, [prefix === '/v1' ? 'batches (OpenAI)' : 'batches (envelope)'])
  }
  const batch = doc.paths['/v1/batches/{batch_id}'].get.responses['200'].content['application/json'].schema
  t.ok(batch.properties.request_counts && batch.properties.usage && batch.properties.cancelled_at, 'the Batch object documented')
  const wrapped = doc.paths['/api/v1/files/{file_id}'].get.responses['200'].content['application/json'].schema
  t.same(Object.keys(wrapped.properties).sort(), ['code', 'data', 'message', 'success'])
  t.ok(doc.components.securitySchemes.bearerAuth)

  const docs = await send(`${server.url}/docs/`, 'GET', {})
  t.equal(docs.status, 200)
  t.match(docs.body, /swagger-ui/i)
})

t.test('/v1 answers validate against OpenAI\'s published schemas', async (t) => {
  const spec = JSON.parse(await readFile(new URL('../fixtures/openai-files-spec.json', import.meta.url), 'utf8'))
  const schemas = spec.schemas
  // Known looseness of the published document (see its README): the SDKs accept
  // `expires_at: null`, and the response enum of `purpose` omits `evals`.
  schemas.OpenAIFile.properties.expires_at = { anyOf: [{ type: 'integer' }, { type: 'null' }] }
  schemas.OpenAIFile.properties.purpose.enum.push('evals')
  const ajv = new Ajv({ strict: false, validateFormats: false })
  ajv.addSchema({ $id: 'openai', components: { schemas } })
  const check = (name: string, value: unknown) => {
    const valid = ajv.validate({ $ref: `openai#/components/schemas/${name}` }, value)
    t.ok(valid, `${name}: ${JSON.stringify(ajv.errors)}`)
  }

  const server = await startServer(t)
  const client = new OpenAI({ apiKey: KEY_A, baseURL: `${server.url}/v1`, maxRetries: 0 })
  const line = JSON.stringify({ custom_id: '1', method: 'POST', url: '/v1/embeddings', body: { model: 'e', input: 'x' } })
  const batch = await client.files.create({ file: await toFile(Buffer.from(line), 'a.jsonl'), purpose: 'batch' })
  const evals = await client.files.create({ file: await toFile(Buffer.from('{}'), 'e.jsonl'), purpose: 'evals' })
  for (const file of [batch, evals]) check('OpenAIFile', (await getJson(`${server.url}/v1/files/${file.id}`, KEY_A)).json())
  check('ListFilesResponse', (await getJson(`${server.url}/v1/files?limit=1`, KEY_A)).json())
  check('DeleteFileResponse', (await send(`${server.url}/v1/files/${batch.id}`, 'DELETE', { authorization: `Bearer ${KEY_A}` })).json())
  check('ErrorResponse', (await getJson(`${server.url}/v1/files/${batch.id}`, KEY_A)).json())
  check('ErrorResponse', (await getJson(`${server.url}/v1/files`)).json())
  check('ErrorResponse', (await getJson(`${server.url}/v1/files?limit=0`, KEY_A)).json())
})
