import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { KEY_A, listBlobs, objectKeyOf, startServer } from '../helpers/app.js'
import { BOUNDARY, postMultipart } from '../helpers/multipart.js'
import { openRaw, uploadHead, type RawConnection } from '../faults/helpers/raw-http.js'
import { sample } from './helpers/prometheus.js'

const line = (id: string): string => JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model: 'm', messages: [{ role: 'user', content: 'hi' }] } })
const BUSY = {
  message: 'This server is already receiving 2 uploads, its limit; nothing was read or stored. Retry in 7 s.',
  type: 'server_error',
  param: null,
  code: 'too_many_concurrent_uploads'
}

/** An upload that sent its purpose and the start of its file, then holds the connection open. */
async function holdUpload (url: string): Promise<RawConnection> {
  const connection = await openRaw(url)
  const start = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n` +
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="held.jsonl"\r\nContent-Type: application/jsonl\r\n\r\n${line('held')}\n`
  await connection.write(uploadHead(KEY_A, 1024 * 1024))
  await connection.write(start)
  return connection
}

/** Temp files of puts in progress: a held upload is inside the pipeline once its put has one. */
async function untilPutsInFlight (dataDir: string, count: number): Promise<void> {
  for (let i = 0; i < 250; i++) {
    if ((await listBlobs(dataDir)).filter((b) => b.startsWith('.tmp/')).length === count) return
    await sleep(20)
  }
  throw new Error(`never ${count} puts in flight`)
}

t.test('MAX_CONCURRENT_UPLOADS: the next upload is answered 503 with Retry-After before its body is read, in both families', async (t) => {
  const server = await startServer(t, { MAX_CONCURRENT_UPLOADS: '2', OVERLOAD_RETRY_AFTER_SECONDS: '7' })
  const held = [await holdUpload(server.url), await holdUpload(server.url)]
  await untilPutsInFlight(server.dataDir, 2)

  // Only the head: a refusal that needs no byte of the body comes without waiting for one.
  const headOnly = await openRaw(server.url)
  await headOnly.write(uploadHead(KEY_A, 5 * 1024 * 1024))
  const early = await headOnly.response()
  t.equal(early?.status, 503)
  t.equal(early?.headers['retry-after'], '7')
  t.same(JSON.parse(early?.body ?? '{}'), { error: BUSY })
  headOnly.socket.destroy()

  const parts = [{ name: 'purpose', value: 'batch' }, { name: 'file', filename: 'b.jsonl', content: Buffer.from(line('a') + '\n') }]
  const bare = await postMultipart(`${server.url}/v1/files`, parts, { key: KEY_A })
  t.equal(bare.status, 503)
  t.equal(bare.headers['retry-after'], '7')
  t.same(bare.json(), { error: BUSY })
  const wrapped = await postMultipart(`${server.url}/api/v1/files`, parts, { key: KEY_A })
  t.equal(wrapped.status, 503, 'the bound is per replica: both families share it')
  t.equal(wrapped.headers['retry-after'], '7')
  t.same(wrapped.json(), { success: false, code: '503', message: BUSY.message, data: { error: BUSY } })

  const reads = await fetch(`${server.url}/v1/files`, { headers: { authorization: `Bearer ${KEY_A}` } })
  t.equal(reads.status, 200, 'only uploads are bounded')
  const metrics = await (await fetch(`${server.url}/metrics`)).text()
  t.equal(sample(metrics, 'files_api_uploads_total', { outcome: 'busy' }), 3)

  // A held upload that goes away frees its slot.
  held[0]?.socket.destroy()
  await untilPutsInFlight(server.dataDir, 1)
  let after = await postMultipart(`${server.url}/v1/files`, parts, { key: KEY_A })
  for (let i = 0; i < 50 && after.status === 503; i++) {
    await sleep(20)
    after = await postMultipart(`${server.url}/v1/files`, parts, { key: KEY_A })
  }
  t.equal(after.status, 200, 'a slot is free again')
  held[1]?.socket.destroy()
  await untilPutsInFlight(server.dataDir, 0)
  t.same(await listBlobs(server.dataDir), [`${await objectKeyOf(server.app, after.json().id as string)}:${Buffer.byteLength(line('a') + '\n')}`], 'only the accepted upload is stored')
})

t.test('MAX_CONCURRENT_UPLOADS=0: no bound', async (t) => {
  const server = await startServer(t, { MAX_CONCURRENT_UPLOADS: '0' })
  const held = await Promise.all(Array.from({ length: 20 }, async () => await holdUpload(server.url)))
  await untilPutsInFlight(server.dataDir, 20)
  const res = await postMultipart(`${server.url}/v1/files`, [{ name: 'purpose', value: 'batch' }, { name: 'file', filename: 'b.jsonl', content: Buffer.from(line('a')) }], { key: KEY_A })
  t.equal(res.status, 200)
  for (const connection of held) connection.socket.destroy()
})
