import { request } from 'node:http'
import t from 'tap'
import { KEY_A, listBlobs, startServer } from '../helpers/app.js'
import { BOUNDARY } from '../helpers/multipart.js'

t.test('an upload running longer than UPLOAD_MAX_DURATION_MS is answered 408 and nothing is stored', async (t) => {
  const server = await startServer(t, { UPLOAD_MAX_DURATION_MS: '1000', RECONCILE_INTERVAL_MS: '0' })
  const started = Date.now()
  const answer = await new Promise<{ status: number, body: string }>((resolve, reject) => {
    const req = request(`${server.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${KEY_A}`, 'content-type': `multipart/form-data; boundary=${BOUNDARY}` } })
    // A client that keeps sending, slowly: the idle timeout never fires, only the duration limit.
    const timer = setInterval(() => { req.write('x'.repeat(100)) }, 100)
    req.on('response', (res) => {
      clearInterval(timer)
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    })
    req.on('error', (err) => { clearInterval(timer); reject(err) })
    req.write(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="slow.txt"\r\n\r\n`)
  })
  t.equal(answer.status, 408)
  t.same(JSON.parse(answer.body), {
    error: {
      message: 'The upload took longer than the longest allowed (1000 ms, UPLOAD_MAX_DURATION_MS); nothing was stored.',
      type: 'invalid_request_error',
      param: 'file',
      code: 'upload_timeout'
    }
  })
  t.ok(Date.now() - started < 5000, 'answered soon after the limit')
  t.same(await listBlobs(server.dataDir), [], 'no object, no temp file')
})

t.test('start-up refuses a grace that does not exceed the longest upload', async (t) => {
  const { loadConfig } = await import('../../src/config.js')
  t.throws(() => loadConfig({ UPLOAD_MAX_DURATION_MS: '3600000', RECONCILE_GRACE_MS: '3600000' }),
    { message: 'invalid configuration: RECONCILE_GRACE_MS (3600000) must exceed UPLOAD_MAX_DURATION_MS (3600000), or reconciliation would abort uploads still running; or set RECONCILE_INTERVAL_MS=0' })
  t.equal(loadConfig({ RECONCILE_INTERVAL_MS: '0', RECONCILE_GRACE_MS: '0' }).RECONCILE_GRACE_MS, 0, 'no reconciliation, no constraint')
  t.throws(() => loadConfig({ STORAGE_PREFIX: 'files' }), /STORAGE_PREFIX="files"/)
})
