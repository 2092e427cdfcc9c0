import { createHash } from 'node:crypto'
import OpenAI, { toFile } from 'openai'
import t from 'tap'
import { KEY_A, KEY_B, listBlobs, objectKeyOf, startServer } from '../helpers/app.js'
import { getJson, postMultipart, send } from '../helpers/multipart.js'

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex')
const line = (id: string) => JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model: 'm', messages: [{ role: 'user', content: `hi ${id}` }] } })

t.test('with the openai SDK: list pages through every file exactly once, content round-trips, delete removes', async (t) => {
  const server = await startServer(t)
  const client = new OpenAI({ apiKey: KEY_A, baseURL: `${server.url}/v1`, maxRetries: 0 })
  const other = new OpenAI({ apiKey: KEY_B, baseURL: `${server.url}/v1`, maxRetries: 0 })
  const uploaded: Array<{ id: string, purpose: string, bytes: Buffer }> = []
  // All in the same second: ordering must come from the ids, not from created_at.
  for (let i = 0; i < 9; i++) {
    const purpose = i % 3 === 2 ? 'user_data' : 'batch'
    const bytes = Buffer.from(`${line(`a${i}`)}\n${line(`b${i}`)}\n`)
    const file = await client.files.create({ file: await toFile(bytes, `f${i}.jsonl`), purpose })
    uploaded.push({ id: file.id, purpose, bytes })
  }
  await other.files.create({ file: await toFile(Buffer.from(line('x')), 'other.jsonl'), purpose: 'batch' })
  const ids = uploaded.map((f) => f.id)

  const collect = async (query: OpenAI.FileListParams) => {
    const seen: string[] = []
    for await (const file of client.files.list(query)) seen.push(file.id)
    return seen
  }
  t.same(await collect({ limit: 2, order: 'asc' }), ids, 'asc, pages of 2')
  t.same(await collect({ limit: 4, order: 'desc' }), [...ids].reverse(), 'desc, pages of 4')
  t.same(await collect({ limit: 1 }), [...ids].reverse(), 'default order is desc')
  t.same(await collect({ limit: 2, order: 'asc', purpose: 'user_data' }), uploaded.filter((f) => f.purpose === 'user_data').map((f) => f.id), 'purpose filter')
  t.same(await collect({ limit: 3, purpose: 'assistants' }), [], 'no such purpose: empty')

  const first = (await getJson(`${server.url}/v1/files?limit=3&order=asc`, KEY_A)).json()
  t.same({ first: first.first_id, last: first.last_id, more: first.has_more }, { first: ids[0], last: ids[2], more: true })
  const last = await client.files.list({ limit: 3, order: 'asc', after: ids[5] })
  t.same(last.data.map((f) => f.id), ids.slice(6))
  t.equal(last.has_more, false, 'an honest has_more on the last page')

  for (const file of uploaded) {
    const content = await client.files.content(file.id)
    t.equal(sha256(new Uint8Array(await content.arrayBuffer())), sha256(file.bytes), `content of ${file.id}`)
  }

  const target = ids[4] as string
  const targetKey = await objectKeyOf(server.app, target)
  t.ok((await listBlobs(server.dataDir)).some((b) => b.startsWith(`${targetKey}:`)), 'the object is there before the delete')
  t.same(await client.files.delete(target), { id: target, object: 'file', deleted: true })
  t.ok(await client.files.retrieve(target).catch((e: unknown) => e) instanceof OpenAI.NotFoundError, 'retrieve after delete')
  t.ok(await client.files.delete(target).catch((e: unknown) => e) instanceof OpenAI.NotFoundError, 'second delete')
  t.ok(await client.files.content(target).catch((e: unknown) => e) instanceof OpenAI.NotFoundError, 'content after delete')
  t.notOk((await listBlobs(server.dataDir)).some((b) => b.startsWith(`${targetKey}:`)), 'the object is gone')
  t.same(await collect({ limit: 2, order: 'asc' }), ids.filter((id) => id !== target))
})

t.test('project isolation on every route, content with Range and delete included', async (t) => {
  const server = await startServer(t)
  const a = new OpenAI({ apiKey: KEY_A, baseURL: `${server.url}/v1`, maxRetries: 0 })
  const file = await a.files.create({ file: await toFile(Buffer.from(line('1')), 'a.jsonl'), purpose: 'batch' })
  const missing = 'file-01J00000000000000000000000'
  const routes: Array<[string, string, Record<string, string>]> = [
    ['GET', '/files/ID', {}],
    ['GET', '/files/ID/content', {}],
    ['GET', '/files/ID/content', { range: 'bytes=0-3' }],
    ['DELETE', '/files/ID', {}]
  ]
  for (const prefix of ['/v1', '/api/v1']) {
    for (const [method, path, headers] of routes) {
      const foreign = await send(`${server.url}${prefix}${path.replace('ID', file.id)}`, method, { authorization: `Bearer ${KEY_B}`, ...headers })
      const absent = await send(`${server.url}${prefix}${path.replace('ID', missing)}`, method, { authorization: `Bearer ${KEY_B}`, ...headers })
      t.equal(foreign.status, 404, `${method} ${prefix}${path} ${JSON.stringify(headers)}`)
      t.same(foreign.body.replaceAll(file.id, 'X'), absent.body.replaceAll(missing, 'X'), 'indistinguishable from a missing file')
    }
    const list = await getJson(`${server.url}${prefix}/files`, KEY_B)
    const data = prefix === '/v1' ? list.json().data : list.json().data.data
    t.same(data, [], `${prefix} list shows nothing of another project`)
  }
  t.same(await a.files.retrieve(file.id), file, 'still there for its owner after the other project\'s delete attempts')
})

t.test('content: headers, ranges, conditional requests', async (t) => {
  const server = await startServer(t)
  const client = new OpenAI({ apiKey: KEY_A, baseURL: `${server.url}/v1`, maxRetries: 0 })
  const bytes = Buffer.from('0123456789abcdefghij\n')
  // Raw multipart, so the name reaches the server unencoded (the SDK percent-encodes
  // quotes and CR/LF in filenames, as browsers do).
  const name = 'résumé\u202e\u0001 ; x=1.bin'
  const stored = await postMultipart(`${server.url}/v1/files`, [{ name: 'file', filename: name, content: bytes }, { name: 'purpose', value: 'user_data' }], { key: KEY_A })
  const file = stored.json()
  t.equal(file.filename, 'résumé ; x=1.bin', 'control and bidi characters removed from the stored name')
  const url = `${server.url}/v1/files/${file.id}/content`
  const auth = { authorization: `Bearer ${KEY_A}` }

  const whole = await send(url, 'GET', auth)
  t.equal(whole.status, 200)
  t.equal(whole.body, bytes.toString())
  t.equal(whole.headers['content-length'], String(bytes.length))
  t.equal(whole.headers['content-type'], 'application/octet-stream')
  t.equal(whole.headers['x-content-type-options'], 'nosniff')
  t.equal(whole.headers['accept-ranges'], 'bytes')
  t.equal(whole.headers['set-cookie'], undefined, 'the filename cannot inject a header')
  t.equal(whole.headers['content-disposition'],
    'attachment; filename="r_sum_ ; x=1.bin"; filename*=UTF-8\'\'r%C3%A9sum%C3%A9%20%3B%20x%3D1.bin')
  const etag = whole.headers.etag
  t.equal(etag, `"${sha256(bytes)}"`)

  const cases: Array<[string, number, string, string | undefined]> = [
    ['bytes=0-3', 206, '0123', 'bytes 0-3/21'],
    ['bytes=10-', 206, bytes.subarray(10).toString(), 'bytes 10-20/21'],
    ['bytes=-5', 206, bytes.subarray(16).toString(), 'bytes 16-20/21'],
    ['bytes=20-20', 206, '\n', 'bytes 20-20/21'],
    ['bytes=5-1000', 206, bytes.subarray(5).toString(), 'bytes 5-20/21'],
    ['bytes=0-1,4-5', 200, bytes.toString(), undefined],
    ['items=0-1', 200, bytes.toString(), undefined]
  ]
  for (const [range, status, body, contentRange] of cases) {
    const res = await send(url, 'GET', { ...auth, range })
    t.equal(res.status, status, range)
    t.equal(res.body, body, range)
    t.equal(res.headers['content-range'], contentRange, range)
    t.equal(res.headers['content-length'], String(Buffer.byteLength(body)), range)
  }
  for (const prefix of ['/v1', '/api/v1']) {
    const res = await send(`${server.url}${prefix}/files/${file.id}/content`, 'GET', { ...auth, range: 'bytes=21-' })
    t.equal(res.status, 416)
    t.equal(res.headers['content-range'], 'bytes */21')
    const error = prefix === '/v1' ? res.json().error : res.json().data.error
    t.equal(error.code, 'range_not_satisfiable')
  }
  const stale = await send(url, 'GET', { ...auth, range: 'bytes=0-3', 'if-range': '"other"' })
  t.equal(stale.status, 200, 'If-Range with another validator: the whole file')
  const notModified = await send(url, 'GET', { ...auth, 'if-none-match': etag as string })
  t.equal(notModified.status, 304)
  t.equal(notModified.body, '')

  const jsonl = await client.files.create({ file: await toFile(Buffer.from(line('1')), 'x.JSONL'), purpose: 'batch' })
  const typed = await send(`${server.url}/api/v1/files/${jsonl.id}/content`, 'GET', auth)
  t.equal(typed.headers['content-type'], 'application/jsonl')
  t.equal(typed.body, line('1'), 'the envelope family serves raw bytes too')
})

t.test('list parameters are validated in the family\'s error shape', async (t) => {
  const server = await startServer(t)
  const bad: Array<[string, string]> = [
    ['limit=0', 'limit'], ['limit=10001', 'limit'], ['limit=abc', 'limit'], ['limit=1.5', 'limit'],
    ['after=not-a-file-id', 'after'], ['order=sideways', 'order']
  ]
  for (const [query, param] of bad) {
    const bare = await getJson(`${server.url}/v1/files?${query}`, KEY_A)
    t.equal(bare.status, 400, query)
    t.equal(bare.json().error.type, 'invalid_request_error')
    t.equal(bare.json().error.param, param, query)
    const wrapped = await getJson(`${server.url}/api/v1/files?${query}`, KEY_A)
    t.equal(wrapped.status, 400)
    t.equal(wrapped.json().code, '400')
    t.equal(wrapped.json().data.error.param, param)
  }
  const ok = await getJson(`${server.url}/api/v1/files?limit=10000&order=asc`, KEY_A)
  t.same(ok.json(), { success: true, code: '200', message: 'successful', data: { object: 'list', data: [], first_id: null, last_id: null, has_more: false } })
})
