import t from 'tap'
import { KEY_A, listBlobs, objectKeyOf, startServer } from '../helpers/app.js'
import { postMultipart, send } from '../helpers/multipart.js'

const LINE = '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"hi"}]}}\n'

// Every JSON media type a client may name: the Python SDK's, with parameters, and the
// structured-suffix ones (RFC 6839).
const JSON_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'Application/JSON;charset=UTF-8',
  'application/merge-patch+json',
  'application/vnd.api+json; charset=utf-8'
]

// How an empty body can travel: no framing at all (node:http's DELETE, like httpx's),
// Content-Length: 0, or a chunked body with no chunk.
const FRAMINGS: Array<{ name: string, headers: Record<string, string>, body?: Buffer }> = [
  { name: 'no length', headers: {} },
  { name: 'content-length 0', headers: { 'content-length': '0' }, body: Buffer.alloc(0) },
  { name: 'chunked, empty', headers: { 'transfer-encoding': 'chunked' }, body: Buffer.alloc(0) }
]

async function uploadOne (url: string, prefix: string): Promise<string> {
  const res = await postMultipart(`${url}${prefix}/files`, [
    { name: 'purpose', value: 'batch' },
    { name: 'file', filename: 'one.jsonl', content: Buffer.from(LINE) }
  ], { key: KEY_A })
  if (res.status !== 200) throw new Error(`upload answered ${res.status}: ${res.body}`)
  const body = res.json()
  return prefix === '/v1' ? body.id : body.data.id
}

for (const prefix of ['/v1', '/api/v1']) {
  const wrap = (data: unknown) => (prefix === '/v1' ? data : { success: true, code: '200', message: 'successful', data })

  t.test(`${prefix}: DELETE with a JSON content type and an empty body deletes the file`, async (t) => {
    const server = await startServer(t)
    for (const type of JSON_TYPES) {
      for (const framing of FRAMINGS) {
        const id = await uploadOne(server.url, prefix)
        const res = await send(`${server.url}${prefix}/files/${id}`, 'DELETE', { authorization: `Bearer ${KEY_A}`, 'content-type': type, ...framing.headers }, framing.body)
        t.equal(res.status, 200, `${type}, ${framing.name}: ${res.body}`)
        t.same(res.json(), wrap({ id, object: 'file', deleted: true }))
      }
    }
    t.same(await listBlobs(server.dataDir), [], 'every object is gone')
  })

  t.test(`${prefix}: other routes take an empty JSON body as no body`, async (t) => {
    const server = await startServer(t)
    const id = await uploadOne(server.url, prefix)
    const headers = { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json', 'content-length': '0' }
    const list = await send(`${server.url}${prefix}/files`, 'GET', headers)
    t.equal(list.status, 200)
    const listed = prefix === '/v1' ? list.json().data : list.json().data.data
    t.same(listed.map((file: { id: string }) => file.id), [id])
    const retrieved = await send(`${server.url}${prefix}/files/${id}`, 'GET', headers)
    t.equal(retrieved.status, 200)
    const content = await send(`${server.url}${prefix}/files/${id}/content`, 'GET', headers)
    t.equal(content.status, 200)
    t.equal(content.body, LINE)
    // The upload route wants multipart: the empty JSON body reaches it and is refused for
    // its media type, not as unparsable JSON.
    const upload = await send(`${server.url}${prefix}/files`, 'POST', headers, Buffer.alloc(0))
    t.equal(upload.status, 415)
    const error = prefix === '/v1' ? upload.json().error : upload.json().data.error
    t.equal(error.code, 'unsupported_media_type')
    t.equal(error.message, 'Content-Type "application/json" is not supported here; send multipart/form-data with the fields "file" and "purpose".')
    // A refusal still comes before the body: no key, 401, whatever the body.
    const anonymous = await send(`${server.url}${prefix}/files/${id}`, 'DELETE', { 'content-type': 'application/json' })
    t.equal(anonymous.status, 401)
    t.same(await listBlobs(server.dataDir), [`${await objectKeyOf(server.app, id)}:${LINE.length}`], 'only the upload is stored')
  })

  t.test(`${prefix}: a non-empty JSON body is still parsed, and refused when broken or poisoned`, async (t) => {
    const server = await startServer(t)
    const id = await uploadOne(server.url, prefix)
    const url = `${server.url}${prefix}/files/${id}`
    const headers = { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json' }
    // JSON.parse accepts the last two: refusing them shows Fastify's poisoning guard still runs.
    const bodies: Array<[string, string]> = [['{"oops"', 'broken JSON'], ['{"__proto__":{"x":1}}', 'a __proto__ key'], ['{"constructor":{"prototype":{}}}', 'a constructor.prototype key']]
    for (const [body, what] of bodies) {
      const bytes = Buffer.from(body)
      const res = await send(url, 'DELETE', { ...headers, 'content-length': String(bytes.length) }, bytes)
      t.equal(res.status, 400, what)
      const error = prefix === '/v1' ? res.json().error : res.json().data.error
      t.equal(error.code, 'invalid_request', what)
      t.equal(error.message, 'Body is not valid JSON but content-type is set to \'application/json\'', what)
    }
    const retrieved = await send(url, 'GET', headers)
    t.equal(retrieved.status, 200, 'a refused delete deleted nothing')
    const res = await send(url, 'DELETE', { ...headers, 'content-type': 'application/vnd.api+json', 'content-length': '2' }, Buffer.from('{}'))
    t.equal(res.status, 200, 'a body the route ignores does not stop it')
    t.same(res.json(), wrap({ id, object: 'file', deleted: true }))
  })
}
