import { createHash } from 'node:crypto'
import t from 'tap'
import { KEY_A, KEY_B, listBlobs, startServer } from '../helpers/app.js'
import { getJson, postMultipart, send } from '../helpers/multipart.js'

// test/routes/lifecycle.test.ts covers GET, content, a Range and DELETE by another
// project answering like a missing file. These are the requests that could still leak:
// conditional ones that might answer 304 or 206, HEAD, cursors, filters, metrics.

const LINE = '{"custom_id":"1","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"secret of a"}]}}\n'
const MISSING = 'file-01J00000000000000000000000'

async function uploadAs (url: string, key: string, content: string, purpose = 'batch'): Promise<string> {
  const res = await postMultipart(`${url}/v1/files`, [{ name: 'purpose', value: purpose }, { name: 'file', filename: 'a.jsonl', content: Buffer.from(content) }], { key })
  if (res.status !== 200) throw new Error(`upload failed: ${res.body}`)
  return res.json().id as string
}

t.test('conditional, ranged and HEAD requests of another project answer exactly like a missing file', async (t) => {
  const server = await startServer(t)
  const id = await uploadAs(server.url, KEY_A, LINE)
  const etag = `"${createHash('sha256').update(LINE).digest('hex')}"`
  const variants: Array<[string, string, Record<string, string>]> = [
    ['GET', '/files/ID/content', { 'if-none-match': etag }],
    ['GET', '/files/ID/content', { range: 'bytes=0-0', 'if-range': etag }],
    ['GET', '/files/ID/content', { range: 'bytes=999999-' }],
    ['GET', '/files/ID/content', { range: 'bytes=-1' }],
    ['HEAD', '/files/ID/content', {}],
    ['HEAD', '/files/ID', {}],
    ['DELETE', '/files/ID', { 'if-match': etag }]
  ]
  for (const family of ['/v1', '/api/v1']) {
    for (const [method, path, headers] of variants) {
      const what = `${method} ${family}${path} ${JSON.stringify(headers)}`
      const foreign = await send(`${server.url}${family}${path.replace('ID', id)}`, method, { authorization: `Bearer ${KEY_B}`, ...headers })
      const absent = await send(`${server.url}${family}${path.replace('ID', MISSING)}`, method, { authorization: `Bearer ${KEY_B}`, ...headers })
      t.equal(foreign.status, 404, what)
      t.equal(foreign.body.replaceAll(id, 'X'), absent.body.replaceAll(MISSING, 'X'), `${what}: the same body`)
      for (const header of ['etag', 'content-range', 'content-disposition', 'accept-ranges', 'last-modified']) {
        t.equal(foreign.headers[header], undefined, `${what}: no ${header}`)
      }
      t.equal(foreign.headers['content-length'], absent.headers['content-length'], `${what}: the same length`)
    }
  }
  const own = await send(`${server.url}/v1/files/${id}/content`, 'GET', { authorization: `Bearer ${KEY_A}` })
  t.equal(own.body, LINE, 'the owner still reads it, byte-exact')
  t.equal((await listBlobs(server.dataDir)).length, 1, 'its object is still there')
})

t.test('lists: a cursor or filter naming another project\'s file shows nothing of it', async (t) => {
  const server = await startServer(t)
  const a1 = await uploadAs(server.url, KEY_A, LINE)
  const b1 = await uploadAs(server.url, KEY_B, LINE.replace('secret of a', 'b'), 'user_data')
  const a2 = await uploadAs(server.url, KEY_A, LINE, 'user_data')
  for (const family of ['/v1', '/api/v1']) {
    const data = (query: string, key: string) => getJson(`${server.url}${family}/files?${query}`, key)
      .then((res) => (family === '/v1' ? res.json() : res.json().data) as { data: Array<{ id: string }>, has_more: boolean })
    t.same((await data(`after=${a1}&order=asc`, KEY_B)).data.map((f) => f.id), [b1], `${family}: B after A's first file`)
    t.same((await data(`after=${a2}&order=desc`, KEY_B)).data.map((f) => f.id), [b1], `${family}: B before A's last file`)
    t.same((await data('purpose=batch', KEY_B)).data, [], `${family}: B filtering on A's purpose`)
    t.same((await data('limit=1&order=asc', KEY_B)), { object: 'list', data: (await data('order=asc', KEY_B)).data, first_id: b1, last_id: b1, has_more: false },
      `${family}: has_more does not count A's files`)
    t.same((await data('order=asc', KEY_A)).data.map((f) => f.id), [a1, a2], `${family}: A sees only its own`)
  }
})

t.test('delete by another project removes nothing, from the database or the disk', async (t) => {
  const server = await startServer(t)
  const id = await uploadAs(server.url, KEY_A, LINE)
  const before = await listBlobs(server.dataDir)
  for (const family of ['/v1', '/api/v1']) {
    t.equal((await send(`${server.url}${family}/files/${id}`, 'DELETE', { authorization: `Bearer ${KEY_B}` })).status, 404)
  }
  t.same(await listBlobs(server.dataDir), before, 'the object is untouched')
  t.equal((await getJson(`${server.url}/v1/files/${id}`, KEY_A)).status, 200, 'the row is untouched')
  t.equal((await send(`${server.url}/v1/files/${id}`, 'DELETE', { authorization: `Bearer ${KEY_A}` })).status, 200, 'its owner can delete it')
  t.same(await listBlobs(server.dataDir), [])
})

t.test('gateway mode: the header\'s project is the only one seen, whatever key comes along', async (t) => {
  const server = await startServer(t, { TRUSTED_PROJECT_HEADER: 'x-project' })
  const id = await uploadAs(server.url, KEY_A, LINE)
  for (const [what, headers] of [
    ['header of another project', { 'x-project': 'project-b' }],
    ['header of another project with A\'s key', { 'x-project': 'project-b', authorization: `Bearer ${KEY_A}` }],
    ['a header differing in case', { 'x-project': 'Project-A' }]
  ] as Array<[string, Record<string, string>]>) {
    for (const path of [`/v1/files/${id}`, `/v1/files/${id}/content`, `/api/v1/files/${id}`]) {
      t.equal((await send(`${server.url}${path}`, 'GET', headers)).status, 404, `${what}: ${path}`)
    }
  }
  t.equal((await send(`${server.url}/v1/files/${id}/content`, 'GET', { 'x-project': 'project-a' })).body, LINE, 'the owning project through the gateway')
})

t.test('metrics describe routes, never files: no id, filename or project in /metrics', async (t) => {
  const server = await startServer(t)
  const id = await uploadAs(server.url, KEY_A, LINE)
  await send(`${server.url}/v1/files/${id}/content`, 'GET', { authorization: `Bearer ${KEY_B}` })
  await send(`${server.url}/v1/files/${MISSING}`, 'GET', { authorization: `Bearer ${KEY_A}` })
  const metrics = await send(`${server.url}/metrics`, 'GET', {})
  t.equal(metrics.status, 200)
  t.match(metrics.body, /route="\/v1\/files\/:file_id\/content"/, 'the route pattern')
  for (const leak of [id, MISSING, 'a.jsonl', 'project-a', 'project-b', KEY_A]) t.notOk(metrics.body.includes(leak), `no ${leak}`)
})
