import { rm } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { KEY_A, startServer } from '../helpers/app.js'
import { getJson, postMultipart, send } from '../helpers/multipart.js'
import { batch, filePart, line, manualUpload, purpose } from './helpers/batch.js'
import { sample } from './helpers/prometheus.js'

async function scrape (url: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await send(`${url}/metrics`, 'GET', headers)
  if (res.status !== 200) throw new Error(`metrics answered ${res.status}: ${res.body}`)
  return res.body
}

t.test('metrics after known traffic: latency per route, uploads, bytes, validation and storage errors', async (t) => {
  const server = await startServer(t, { BATCH_MAX_FILE_BYTES: '4096', MAX_FILE_BYTES: '8192' })
  const { url } = server
  const good = batch(3)
  const other = Buffer.from('plain bytes\n')

  t.equal((await getJson(`${url}/health`)).status, 200)
  t.equal((await getJson(`${url}/health`)).status, 200)
  t.equal((await getJson(`${url}/no/such/route`)).status, 404)
  const stored = await postMultipart(`${url}/v1/files`, [purpose('batch'), filePart(good)], { key: KEY_A })
  t.equal(stored.status, 200)
  t.equal((await postMultipart(`${url}/api/v1/files`, [purpose('user_data'), filePart(other, 'notes.txt')], { key: KEY_A })).status, 200)
  // Four faulty lines, two codes: invalid_json_line (lines 1, 3) and invalid_method (lines 2, 4).
  const bad = Buffer.from(['{oops', JSON.stringify({ ...JSON.parse(line('b')), method: 'GET' }), 'nope', JSON.stringify({ ...JSON.parse(line('d')), method: 'PUT' })].join('\n'))
  const refused = await postMultipart(`${url}/v1/files`, [purpose('batch'), filePart(bad)], { key: KEY_A })
  t.equal(refused.status, 400)
  t.equal(refused.json().error.error_count, 4)
  t.equal((await postMultipart(`${url}/v1/files`, [purpose('batch'), filePart(batch(60))], { key: KEY_A })).status, 413)
  const content = await send(`${url}/v1/files/${stored.json().id as string}/content`, 'GET', { authorization: `Bearer ${KEY_A}` })
  t.equal(content.status, 200)
  t.equal(content.body, good.toString())
  const ranged = await send(`${url}/v1/files/${stored.json().id as string}/content`, 'GET', { authorization: `Bearer ${KEY_A}`, range: 'bytes=0-9' })
  t.equal(ranged.status, 206)

  // A client that goes away mid-file.
  const gone = manualUpload(url, { authorization: `Bearer ${KEY_A}` })
  await gone.write(Buffer.from(line('x') + '\n'))
  await sleep(100)
  gone.req.destroy()

  // The blob root removed under the fs driver: the put fails.
  await rm(path.join(server.dataDir, 'blobs'), { recursive: true, force: true })
  const failed = await postMultipart(`${url}/v1/files`, [purpose('batch'), filePart(good)], { key: KEY_A })
  t.equal(failed.status, 503)
  t.equal(failed.json().error.code, 'storage_unavailable')

  let text = await scrape(url)
  for (let i = 0; i < 50 && sample(text, 'files_api_uploads_total', { outcome: 'aborted' }) !== 1; i++) {
    await sleep(20)
    text = await scrape(url)
  }
  const count = (labels: Record<string, string>) => sample(text, 'http_request_duration_seconds_count', labels)
  t.equal(count({ route: '/health', method: 'GET', status_code: '200' }), 2)
  t.equal(count({ route: 'unmatched', method: 'GET', status_code: '404' }), 1)
  t.equal(count({ route: '/v1/files', method: 'POST', status_code: '200' }), 1)
  t.equal(count({ route: '/api/v1/files', method: 'POST', status_code: '200' }), 1)
  t.equal(count({ route: '/v1/files', method: 'POST', status_code: '400' }), 1)
  t.equal(count({ route: '/v1/files', method: 'POST', status_code: '413' }), 1)
  t.equal(count({ route: '/v1/files', method: 'POST', status_code: '503' }), 1)
  t.equal(count({ route: '/v1/files/:file_id/content', method: 'GET', status_code: '200' }), 1)
  t.equal(count({ route: '/v1/files/:file_id/content', method: 'GET', status_code: '206' }), 1)
  t.equal(sample(text, 'http_request_duration_seconds_bucket', { route: '/health', method: 'GET', status_code: '200', le: '+Inf' }), 2)
  t.ok((sample(text, 'http_request_duration_seconds_sum', { route: '/health', method: 'GET', status_code: '200' }) ?? -1) >= 0)

  t.equal(sample(text, 'files_api_uploads_total', { outcome: 'stored' }), 2)
  t.equal(sample(text, 'files_api_uploads_total', { outcome: 'invalid' }), 1)
  t.equal(sample(text, 'files_api_uploads_total', { outcome: 'too_large' }), 1)
  t.equal(sample(text, 'files_api_uploads_total', { outcome: 'aborted' }), 1)
  t.equal(sample(text, 'files_api_uploads_total', { outcome: 'storage_error' }), 1)
  t.equal(sample(text, 'files_api_uploads_total', { outcome: 'quota_exceeded' }), 0)
  t.equal(sample(text, 'files_api_uploads_total', { outcome: 'other' }), 0)
  t.equal(sample(text, 'files_api_uploaded_bytes_total', { purpose: 'batch' }), good.length)
  t.equal(sample(text, 'files_api_uploaded_bytes_total', { purpose: 'user_data' }), other.length)
  t.equal(sample(text, 'files_api_downloaded_bytes_total'), good.length + 10)
  t.equal(sample(text, 'files_api_batch_validation_errors_total', { code: 'invalid_json_line' }), 2)
  t.equal(sample(text, 'files_api_batch_validation_errors_total', { code: 'invalid_method' }), 2)
  t.equal(sample(text, 'files_api_batch_validation_errors_all_total'), 4)
  t.equal(sample(text, 'files_api_storage_errors_total', { operation: 'put' }), 1)
  t.equal(sample(text, 'files_api_storage_errors_total', { operation: 'get' }), undefined, 'no get failed')
  t.ok((sample(text, 'process_resident_memory_bytes') ?? 0) > 0, 'default process metrics')
  t.ok(sample(text, 'nodejs_eventloop_lag_seconds') !== undefined)
})

t.test('every listed error counts by code; error_count counts them all', async (t) => {
  const server = await startServer(t)
  // 150 faulty lines: the answer lists 100 of them, error_count says 150.
  const bad = Buffer.from(Array.from({ length: 150 }, () => '{').join('\n'))
  const res = await postMultipart(`${server.url}/v1/files`, [purpose('batch'), filePart(bad)], { key: KEY_A })
  t.equal(res.status, 400)
  t.equal(res.json().error.errors.length, 100)
  t.equal(res.json().error.error_count, 150)
  const text = await scrape(server.url)
  t.equal(sample(text, 'files_api_batch_validation_errors_total', { code: 'invalid_json_line' }), 100)
  t.equal(sample(text, 'files_api_batch_validation_errors_all_total'), 150)
})

t.test('each app has its own registry', async (t) => {
  const one = await startServer(t)
  const two = await startServer(t)
  await getJson(`${one.url}/health`)
  t.equal(sample(await scrape(one.url), 'http_request_duration_seconds_count', { route: '/health', method: 'GET', status_code: '200' }), 1)
  t.equal(sample(await scrape(two.url), 'http_request_duration_seconds_count', { route: '/health', method: 'GET', status_code: '200' }), undefined)
})

t.test('METRICS_TOKEN protects the scrape', async (t) => {
  const token = 'metrics-token-0123456789'
  const server = await startServer(t, { METRICS_TOKEN: token })
  const none = await send(`${server.url}/metrics`, 'GET', {})
  t.equal(none.status, 401)
  t.equal(none.json().error.code, 'missing_api_key')
  const wrong = await send(`${server.url}/metrics`, 'GET', { authorization: 'Bearer not-the-token' })
  t.equal(wrong.status, 401)
  t.equal(wrong.json().error.code, 'invalid_api_key')
  const apiKey = await send(`${server.url}/metrics`, 'GET', { authorization: `Bearer ${KEY_A}` })
  t.equal(apiKey.status, 401, 'an API key is not the metrics token')
  const ok = await send(`${server.url}/metrics`, 'GET', { authorization: `Bearer ${token}` })
  t.equal(ok.status, 200)
  t.match(ok.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.ok(ok.body.includes('# TYPE http_request_duration_seconds histogram'))
  const open = await startServer(t)
  t.equal((await send(`${open.url}/metrics`, 'GET', {})).status, 200, 'open without METRICS_TOKEN')
})
