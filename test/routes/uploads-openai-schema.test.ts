import t from 'tap'
import { KEY_A, startServer } from '../helpers/app.js'
import { postMultipart } from '../helpers/multipart.js'
import { openAiValidator } from '../helpers/openai-schemas.js'
import { postJson } from '../helpers/uploads.js'

const validUpload = openAiValidator('Upload')
const validPart = openAiValidator('UploadPart')

t.test('/v1 uploads answer OpenAI\'s Upload and UploadPart, and the OpenAPI document lists the routes', async (t) => {
  const server = await startServer(t)
  const line = JSON.stringify({ custom_id: '1', method: 'POST', url: '/v1/embeddings', body: { model: 'e', input: 'x' } }) + '\n'
  const created = (await postJson(`${server.url}/v1/uploads`, KEY_A, { filename: 'b.jsonl', purpose: 'batch', bytes: line.length, mime_type: 'text/jsonl' })).json()
  t.ok(validUpload(created), `a pending Upload: ${JSON.stringify(validUpload.errors)}`)
  const part = (await postMultipart(`${server.url}/v1/uploads/${String(created.id)}/parts`, [{ name: 'data', filename: 'blob', content: Buffer.from(line) }], { key: KEY_A })).json()
  t.ok(validPart(part), `an UploadPart: ${JSON.stringify(validPart.errors)}`)
  const completed = (await postJson(`${server.url}/v1/uploads/${String(created.id)}/complete`, KEY_A, { part_ids: [part.id] })).json()
  t.ok(validUpload(completed), `a completed Upload with its File: ${JSON.stringify(validUpload.errors)}`)
  t.match(completed, { status: 'completed', file: { purpose: 'batch', bytes: line.length } })
  const other = (await postJson(`${server.url}/v1/uploads`, KEY_A, { filename: 'c.bin', purpose: 'assistants', bytes: 1, mime_type: 'x' })).json()
  const cancelled = (await postJson(`${server.url}/v1/uploads/${String(other.id)}/cancel`, KEY_A, {})).json()
  t.ok(validUpload(cancelled), `a cancelled Upload: ${JSON.stringify(validUpload.errors)}`)

  const doc = await (await fetch(`${server.url}/openapi.json`)).json() as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { required?: string[], properties: Record<string, { format?: string }> } }> } }>> }
  for (const prefix of ['/v1', '/api/v1']) {
    for (const path of ['/uploads', '/uploads/{upload_id}/parts', '/uploads/{upload_id}/complete', '/uploads/{upload_id}/cancel']) {
      t.same(Object.keys(doc.paths[`${prefix}${path}`] ?? {}), ['post'], `${prefix}${path}`)
    }
    const parts = doc.paths[`${prefix}/uploads/{upload_id}/parts`]?.post?.requestBody?.content['multipart/form-data']?.schema
    t.same(parts?.required, ['data'])
    t.equal(parts?.properties.data?.format, 'binary')
    t.same(doc.paths[`${prefix}/uploads/{upload_id}/complete`]?.post?.requestBody?.content['application/json']?.schema.required, ['part_ids'])
  }
})
