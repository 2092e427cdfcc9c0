import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { KEY_A, listBlobs, startServer } from '../helpers/app.js'
import { getJson, postMultipart, type RawResponse } from '../helpers/multipart.js'
import { batch, filePart, purpose, rowsOf } from './helpers/batch.js'

/** under-pressure samples about once a second: wait until it reports the pressure. */
async function untilRefused (url: string, key: string): Promise<RawResponse> {
  for (let i = 0; i < 100; i++) {
    const res = await getJson(url, key)
    if (res.status !== 200) return res
    await sleep(50)
  }
  throw new Error('never refused')
}

t.test('past a threshold: 503 with Retry-After in each family\'s shape; probes and scrapes still answer', async (t) => {
  // 1 byte of RSS: every process is past it, from the first sample on.
  const server = await startServer(t, { OVERLOAD_MAX_RSS_BYTES: '1', OVERLOAD_RETRY_AFTER_SECONDS: '7' })
  const bare = await untilRefused(`${server.url}/v1/files`, KEY_A)
  t.equal(bare.status, 503)
  t.equal(bare.headers['retry-after'], '7')
  t.match(bare.headers['x-request-id'], /.+/)
  t.same(bare.json(), {
    error: { message: 'The server is overloaded; nothing was done. Retry in 7 s.', type: 'server_error', param: null, code: 'server_overloaded' }
  })
  const wrapped = await getJson(`${server.url}/api/v1/files`, KEY_A)
  t.equal(wrapped.status, 503)
  t.equal(wrapped.headers['retry-after'], '7')
  t.same(wrapped.json(), {
    success: false,
    code: '503',
    message: 'The server is overloaded; nothing was done. Retry in 7 s.',
    data: { error: { message: 'The server is overloaded; nothing was done. Retry in 7 s.', type: 'server_error', param: null, code: 'server_overloaded' } }
  })
  const upload = await postMultipart(`${server.url}/v1/files`, [purpose('batch'), filePart(batch(2))], { key: KEY_A })
  t.equal(upload.status, 503)
  t.equal(upload.json().error.code, 'server_overloaded')
  t.same(await listBlobs(server.dataDir), [], 'nothing stored')
  t.same(await rowsOf(server, 'project-a'), [])

  t.equal((await getJson(`${server.url}/health`)).status, 200)
  t.equal((await getJson(`${server.url}/ready`)).status, 200)
  t.equal((await getJson(`${server.url}/metrics`)).status, 200)
})

t.test('below the thresholds nothing is refused', async (t) => {
  const server = await startServer(t, { OVERLOAD_MAX_RSS_BYTES: String(64 * 1024 * 1024 * 1024) })
  // Past the first sample, so a refusal would show.
  await sleep(1200)
  t.equal((await getJson(`${server.url}/v1/files`, KEY_A)).status, 200)
  t.equal(server.app.isUnderPressure(), false)
})
