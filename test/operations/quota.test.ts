import t from 'tap'
import { KEY_A, KEY_B, listBlobs, startServer } from '../helpers/app.js'
import { postMultipart, send } from '../helpers/multipart.js'
import { batch, filePart, manualUpload, purpose, rowsOf } from './helpers/batch.js'

const blob = (bytes: number): Buffer => Buffer.alloc(bytes, 0x61)
const userData = (bytes: number) => [purpose('user_data'), filePart(blob(bytes), 'data.bin')]
const stored = async (dataDir: string) => (await listBlobs(dataDir)).map((entry) => entry.replace(/upload-[0-9A-Z]{26}/, 'ID')).sort()

function quotaError (detail: string) {
  return {
    message: `Upload file capacity exceeded: ${detail} Delete files to upload more; nothing was stored.`,
    type: 'invalid_request_error',
    param: null,
    code: 'quota_exceeded'
  }
}

t.test('PROJECT_MAX_FILES: the next upload is refused with 403 quota_exceeded; deleting makes room', async (t) => {
  const server = await startServer(t, { PROJECT_MAX_FILES: '2' })
  const first = await postMultipart(`${server.url}/v1/files`, userData(10), { key: KEY_A })
  t.equal(first.status, 200)
  t.equal((await postMultipart(`${server.url}/v1/files`, [purpose('batch'), filePart(batch(2))], { key: KEY_A })).status, 200)

  const refused = await postMultipart(`${server.url}/v1/files`, userData(10), { key: KEY_A })
  t.equal(refused.status, 403)
  t.same(refused.json(), { error: quotaError('the project already has 2 files, the most it may have is 2.') })
  const wrapped = await postMultipart(`${server.url}/api/v1/files`, userData(10), { key: KEY_A })
  t.equal(wrapped.status, 403)
  t.equal(wrapped.json().code, '403')
  t.same(wrapped.json().data.error, quotaError('the project already has 2 files, the most it may have is 2.'))
  t.equal((await rowsOf(server, 'project-a')).length, 2)
  t.equal((await listBlobs(server.dataDir)).length, 2, 'nothing more stored, no temp file')

  t.equal((await postMultipart(`${server.url}/v1/files`, userData(10), { key: KEY_B })).status, 200, 'another project has its own quota')
  t.equal((await send(`${server.url}/v1/files/${first.json().id as string}`, 'DELETE', { authorization: `Bearer ${KEY_A}` })).status, 200)
  t.equal((await postMultipart(`${server.url}/v1/files`, userData(10), { key: KEY_A })).status, 200)
})

t.test('a project at its quota is refused at once, before the body is read', async (t) => {
  const server = await startServer(t, { PROJECT_MAX_FILES: '1' })
  t.equal((await postMultipart(`${server.url}/v1/files`, userData(10), { key: KEY_A })).status, 200)
  // The body is never finished: only a refusal made before reading it can answer.
  const upload = manualUpload(server.url, { authorization: `Bearer ${KEY_A}` }, 'user_data')
  await upload.write(blob(1000))
  const res = await upload.response
  t.equal(res.status, 403)
  t.equal(res.headers.connection, 'close')
  t.equal(JSON.parse(res.body).error.code, 'quota_exceeded')
  upload.req.destroy()
  t.same(await stored(server.dataDir), ['files/project-a/ID:10'])
})

t.test('PROJECT_MAX_BYTES: checked again before commit; a file that does not fit leaves nothing', async (t) => {
  const server = await startServer(t, { PROJECT_MAX_BYTES: '1000' })
  t.equal((await postMultipart(`${server.url}/v1/files`, userData(600), { key: KEY_A })).status, 200)

  // 600 + 500 > 1000: admitted (600 < 1000), refused once its size is known.
  const tooBig = await postMultipart(`${server.url}/v1/files`, userData(500), { key: KEY_A })
  t.equal(tooBig.status, 403)
  t.same(tooBig.json(), { error: quotaError('this file (500 bytes) would bring the project to 1100 bytes, the most it may store is 1000.') })
  t.same(await stored(server.dataDir), ['files/project-a/ID:600'], 'no object, no temp file')
  t.equal((await rowsOf(server, 'project-a')).length, 1)

  t.equal((await postMultipart(`${server.url}/v1/files`, userData(400), { key: KEY_A })).status, 200, 'exactly at the limit is allowed')
  const full = await postMultipart(`${server.url}/v1/files`, userData(1), { key: KEY_A })
  t.equal(full.status, 403)
  t.same(full.json(), { error: quotaError('the project already stores 1000 bytes, the most it may store is 1000.') })
  t.same(await stored(server.dataDir), ['files/project-a/ID:400', 'files/project-a/ID:600'])
  t.same(await server.app.fileStore.usage('project-a', Math.floor(Date.now() / 1000)), { files: 2, bytes: 1000 })
  t.same(await server.app.fileStore.usage('project-b', Math.floor(Date.now() / 1000)), { files: 0, bytes: 0 })
})

t.test('expired files no longer count', async (t) => {
  let clock = Date.UTC(2030, 0, 1)
  const server = await startServer(t, { PROJECT_MAX_FILES: '1', EXPIRY_SWEEP_INTERVAL_MS: '0' }, { now: () => clock })
  const parts = [...userData(10), { name: 'expires_after[anchor]', value: 'created_at' }, { name: 'expires_after[seconds]', value: '3600' }]
  t.equal((await postMultipart(`${server.url}/v1/files`, parts, { key: KEY_A })).status, 200)
  t.equal((await postMultipart(`${server.url}/v1/files`, userData(10), { key: KEY_A })).status, 403)
  const now = Math.floor(clock / 1000)
  t.same(await server.app.fileStore.usage('project-a', now), { files: 1, bytes: 10 })
  t.same(await server.app.fileStore.usage('project-a', now + 3600), { files: 0, bytes: 0 }, 'expired at expires_at')
  clock += 3600 * 1000
  t.equal((await postMultipart(`${server.url}/v1/files`, userData(10), { key: KEY_A })).status, 200, 'the expired file, not yet swept, does not count')
})

t.test('quotas off (0, the default): no limit', async (t) => {
  const server = await startServer(t)
  for (let i = 0; i < 5; i++) t.equal((await postMultipart(`${server.url}/v1/files`, userData(100), { key: KEY_A })).status, 200)
})
