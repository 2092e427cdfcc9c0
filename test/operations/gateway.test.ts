import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { KEY_A, listBlobs, objectKeyOf, startServer } from '../helpers/app.js'
import { postMultipart, send } from '../helpers/multipart.js'
import { batch, filePart, purpose } from './helpers/batch.js'

t.test('without TRUSTED_PROJECT_HEADER (the default) the header is ignored', async (t) => {
  const server = await startServer(t)
  const res = await send(`${server.url}/v1/files`, 'GET', { 'x-project': 'project-a' })
  t.equal(res.status, 401)
  t.equal(res.json().error.code, 'missing_api_key')
})

t.test('gateway mode: the header names the project, no key needed', async (t) => {
  const server = await startServer(t, { TRUSTED_PROJECT_HEADER: 'X-Project', RATE_LIMIT_MAX: '5' })
  const content = batch(2)
  const up = await postMultipart(`${server.url}/v1/files`, [purpose('batch'), filePart(content)], { headers: { 'x-project': 'team.z-1' } })
  t.equal(up.status, 200, up.body)
  const id = up.json().id as string
  t.same(await listBlobs(server.dataDir), [`${await objectKeyOf(server.app, id)}:${content.length}`])

  const mine = await send(`${server.url}/v1/files/${id}`, 'GET', { 'x-project': 'team.z-1' })
  t.equal(mine.status, 200)
  t.equal(mine.json().id, id)
  t.equal((await send(`${server.url}/v1/files/${id}`, 'GET', { 'x-project': 'other' })).status, 404, 'another project does not see it')
  t.equal((await send(`${server.url}/v1/files/${id}`, 'GET', { authorization: `Bearer ${KEY_A}` })).status, 404, 'nor does a key of another project')
  // The header wins over a key: the gateway authenticated the caller.
  const both = await send(`${server.url}/v1/files/${id}`, 'GET', { 'x-project': 'team.z-1', authorization: `Bearer ${KEY_A}` })
  t.equal(both.status, 200)
  // Without the header, keys work as before.
  t.equal((await send(`${server.url}/v1/files`, 'GET', { authorization: `Bearer ${KEY_A}` })).status, 200)
  t.equal((await send(`${server.url}/v1/files`, 'GET', {})).status, 401)
})

t.test('gateway mode: a malformed project name is refused with 400', async (t) => {
  const server = await startServer(t, { TRUSTED_PROJECT_HEADER: 'x-project' })
  for (const bad of ['..', '../etc', 'a b', 'x'.repeat(65), 'ü', '']) {
    const res = await send(`${server.url}/v1/files`, 'GET', { 'x-project': bad })
    t.equal(res.status, 400, JSON.stringify(bad))
    t.same(res.json(), {
      error: {
        message: 'The x-project header must name a project of 1-64 characters of A-Z a-z 0-9 . _ -.',
        type: 'invalid_request_error',
        param: 'x-project',
        code: 'invalid_project'
      }
    })
  }
  const wrapped = await send(`${server.url}/api/v1/files`, 'GET', { 'x-project': '../etc', authorization: `Bearer ${KEY_A}` })
  t.equal(wrapped.status, 400, 'a bad header is not rescued by a good key')
  t.equal(wrapped.json().data.error.code, 'invalid_project')
  t.same(await listBlobs(server.dataDir), [])
})

t.test('gateway mode: rate limits count per project', async (t) => {
  const server = await startServer(t, { TRUSTED_PROJECT_HEADER: 'x-project', RATE_LIMIT_MAX: '2' })
  for (let i = 0; i < 2; i++) t.equal((await send(`${server.url}/v1/files`, 'GET', { 'x-project': 'p1' })).status, 200)
  t.equal((await send(`${server.url}/v1/files`, 'GET', { 'x-project': 'p1' })).status, 429)
  t.equal((await send(`${server.url}/v1/files`, 'GET', { 'x-project': 'p2' })).status, 200)
})

t.test('TRUSTED_PROJECT_HEADER must be a header name', async (t) => {
  t.throws(() => loadConfig({ TRUSTED_PROJECT_HEADER: 'x project' }), { name: 'ConfigError', message: /TRUSTED_PROJECT_HEADER/ })
  t.throws(() => loadConfig({ TRUSTED_PROJECT_HEADER: 'x-project:' }), { name: 'ConfigError' })
  t.equal(loadConfig({ TRUSTED_PROJECT_HEADER: 'X-Project' }).TRUSTED_PROJECT_HEADER, 'X-Project')
})
