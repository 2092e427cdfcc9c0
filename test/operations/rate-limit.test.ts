import t from 'tap'
import { createApiKeyTable } from '../../src/api-keys.js'
import { KEY_A, KEY_B, listBlobs, startServer } from '../helpers/app.js'
import { getJson, postMultipart, send } from '../helpers/multipart.js'
import { batch, filePart, purpose, rowsOf } from './helpers/batch.js'

const KEY_A2 = 'sk-test-project-a-second-key-0123'
const keys = createApiKeyTable([[KEY_A, 'project-a'], [KEY_A2, 'project-a'], [KEY_B, 'project-b']])

t.test('RATE_LIMIT_MAX requests per key and window, then 429 in the family\'s shape', async (t) => {
  const server = await startServer(t, { RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' }, { keys })
  const { url } = server

  // An unauthenticated flood is refused by auth and consumes no budget.
  for (let i = 0; i < 5; i++) {
    t.equal((await getJson(`${url}/v1/files`)).status, 401)
    t.equal((await getJson(`${url}/v1/files`, 'sk-not-a-key-of-anyone-000')).status, 401)
  }
  // Operations routes are not limited.
  for (let i = 0; i < 5; i++) t.equal((await getJson(`${url}/health`)).status, 200)

  for (const remaining of [2, 1, 0]) {
    const ok = await getJson(`${url}/v1/files`, KEY_A)
    t.equal(ok.status, 200)
    t.equal(ok.headers['x-ratelimit-limit'], '3')
    t.equal(ok.headers['x-ratelimit-remaining'], String(remaining))
  }
  const limited = await getJson(`${url}/v1/files`, KEY_A)
  t.equal(limited.status, 429)
  const retryAfter = Number(limited.headers['retry-after'])
  t.ok(retryAfter >= 59 && retryAfter <= 60, `retry-after ${retryAfter}`)
  t.equal(limited.headers['x-ratelimit-remaining'], '0')
  t.match(limited.headers['x-request-id'], /.+/)
  const message = `Rate limit reached for this API key: at most 3 requests per 60 s. Retry in ${retryAfter} s.`
  t.same(limited.json(), { error: { message, type: 'requests', param: null, code: 'rate_limit_exceeded' } })

  // Both families and every route share the key's budget.
  const wrapped = await getJson(`${url}/api/v1/files`, KEY_A)
  t.equal(wrapped.status, 429)
  t.same(wrapped.json(), { success: false, code: '429', message: wrapped.json().message, data: { error: { message: wrapped.json().message, type: 'requests', param: null, code: 'rate_limit_exceeded' } } })
  const upload = await postMultipart(`${url}/v1/files`, [purpose('batch'), filePart(batch(2))], { key: KEY_A })
  t.equal(upload.status, 429, 'an upload is refused before its body is read')
  t.equal(upload.headers.connection, 'close')
  t.same(await listBlobs(server.dataDir), [])
  t.same(await rowsOf(server, 'project-a'), [])
  t.equal((await send(`${url}/v1/files/file-x`, 'DELETE', { authorization: `Bearer ${KEY_A}` })).status, 429)

  // Another key of the same project, and another project, count on their own.
  for (const key of [KEY_A2, KEY_B]) {
    for (let i = 0; i < 3; i++) t.equal((await getJson(`${url}/v1/files`, key)).status, 200)
    t.equal((await getJson(`${url}/v1/files`, key)).status, 429)
  }
})

t.test('RATE_LIMIT_MAX=0 (the default) does not limit', async (t) => {
  const server = await startServer(t)
  for (let i = 0; i < 20; i++) {
    const res = await getJson(`${server.url}/v1/files`, KEY_A)
    t.equal(res.status, 200)
    t.equal(res.headers['x-ratelimit-limit'], undefined)
  }
})

t.test('a new window restores the budget', async (t) => {
  const server = await startServer(t, { RATE_LIMIT_MAX: '1', RATE_LIMIT_WINDOW_MS: '1000' })
  t.equal((await getJson(`${server.url}/v1/files`, KEY_A)).status, 200)
  const limited = await getJson(`${server.url}/v1/files`, KEY_A)
  t.equal(limited.status, 429)
  t.equal(limited.headers['retry-after'], '1')
  await new Promise((resolve) => setTimeout(resolve, 1100))
  t.equal((await getJson(`${server.url}/v1/files`, KEY_A)).status, 200)
})
