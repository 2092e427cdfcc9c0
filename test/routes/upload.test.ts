import { readFile } from 'node:fs/promises'
import t from 'tap'
import { KEY_A, KEY_B, listBlobs, objectKeyOf, startServer } from '../helpers/app.js'
import { getJson, postMultipart, type Part } from '../helpers/multipart.js'

const SAMPLE = new URL('../fixtures/test_model.jsonl', import.meta.url).pathname

function line (customId: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    custom_id: customId,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'batch-test-model', messages: [{ role: 'user', content: `hello ${customId}` }] },
    ...extra
  })
}

const jsonl = (...lines: string[]) => Buffer.from(lines.join('\n') + '\n')
const filePart = (content: Buffer, filename = 'batch.jsonl'): Part => ({ name: 'file', filename, content })
const purpose = (value: string): Part => ({ name: 'purpose', value })

t.test('a valid batch file is stored and answered in both families', async (t) => {
  const server = await startServer(t)
  const content = jsonl(line('1'), line('2'), line('3'))

  const bare = await postMultipart(`${server.url}/v1/files`, [filePart(content), purpose('batch')], { key: KEY_A })
  t.equal(bare.status, 200, bare.body)
  const file = bare.json()
  t.match(file.id, /^file-[0-9A-HJKMNP-TV-Z]{26}$/)
  t.same(file, {
    id: file.id,
    object: 'file',
    bytes: content.length,
    created_at: file.created_at,
    expires_at: file.created_at + 30 * 24 * 3600,
    filename: 'batch.jsonl',
    purpose: 'batch',
    status: 'processed'
  })
  t.ok(Math.abs(file.created_at - Date.now() / 1000) < 60, 'created_at is unix seconds')

  const wrapped = await postMultipart(`${server.url}/api/v1/files`, [purpose('batch'), filePart(content, 'other.JSONL')], { key: KEY_A })
  t.equal(wrapped.status, 200, wrapped.body)
  const body = wrapped.json()
  t.same(Object.keys(body).sort(), ['code', 'data', 'message', 'success'])
  t.equal(body.success, true)
  t.equal(body.code, '200')
  t.equal(body.message, 'successful')
  t.equal(body.data.bytes, content.length)
  t.equal(body.data.filename, 'other.JSONL')

  for (const [path, expected] of [[`/v1/files/${file.id}`, file], [`/api/v1/files/${file.id}`, { success: true, code: '200', message: 'successful', data: file }]]) {
    const got = await getJson(`${server.url}${path as string}`, KEY_A)
    t.equal(got.status, 200)
    t.same(got.json(), expected, `retrieve ${path as string}`)
  }
  const blobs = await listBlobs(server.dataDir)
  t.same(blobs.filter((b) => !b.startsWith('.tmp')), [
    `${await objectKeyOf(server.app, file.id)}:${content.length}`,
    `${await objectKeyOf(server.app, body.data.id)}:${content.length}`
  ].sort(), 'exactly the two objects are stored, under project and upload id, never the filename')
  for (const id of [file.id, body.data.id]) t.match(await objectKeyOf(server.app, id), /^files\/project-a\/upload-[0-9A-HJKMNP-TV-Z]{26}$/)
})

t.test('the seed curl, byte for byte, gets the seed response shape with the true size', async (t) => {
  const server = await startServer(t)
  const { execFile } = await import('node:child_process')
  const run = (args: string[]) => new Promise<string>((resolve, reject) => {
    execFile('curl', args, (error, stdout) => (error === null ? resolve(stdout) : reject(error)))
  })
  const out = await run(['--silent', '--request', 'POST', `${server.url}/api/v1/files`,
    '--header', `Authorization: Bearer ${KEY_A}`,
    '--header', 'Content-Type: multipart/form-data',
    '--form', `file=@"${SAMPLE}"`,
    '--form', 'purpose="batch"'])
  const body = JSON.parse(out)
  const size = (await readFile(SAMPLE)).length
  t.same(body, {
    success: true,
    code: '200',
    message: 'successful',
    data: {
      id: body.data.id,
      object: 'file',
      bytes: size,
      created_at: body.data.created_at,
      expires_at: body.data.created_at + 2592000,
      filename: 'test_model.jsonl',
      purpose: 'batch',
      status: 'processed'
    }
  })
})

t.test('an invalid batch file is refused with every faulty line and leaves storage as it was', async (t) => {
  const server = await startServer(t)
  const before = await listBlobs(server.dataDir)
  const content = Buffer.from([
    line('1'),
    '{not json',
    line('1'),
    line('4', { method: 'GET' }),
    '',
    line('6')
  ].join('\n'))
  for (const order of ['purpose-first', 'file-first']) {
    const parts = order === 'purpose-first' ? [purpose('batch'), filePart(content)] : [filePart(content), purpose('batch')]
    const res = await postMultipart(`${server.url}/v1/files`, parts, { key: KEY_A })
    t.equal(res.status, 400, order)
    const { error } = res.json()
    t.equal(error.type, 'invalid_request_error')
    t.equal(error.code, 'invalid_batch_file')
    t.equal(error.param, 'file')
    t.equal(error.error_count, 4)
    t.same(error.errors.map((e: { code: string, line: number }) => [e.code, e.line]), [
      ['invalid_json_line', 2],
      ['duplicate_custom_id', 3],
      ['invalid_method', 4],
      ['empty_line', 5]
    ], order)
    t.match(error.message, /line 3: custom_id "1" already used on line 1/)
  }
  const wrapped = await postMultipart(`${server.url}/api/v1/files`, [filePart(content), purpose('batch')], { key: KEY_A })
  t.equal(wrapped.status, 400)
  const body = wrapped.json()
  t.equal(body.success, false)
  t.equal(body.code, '400')
  t.equal(body.message, body.data.error.message)
  t.equal(body.data.error.code, 'invalid_batch_file')
  t.equal(body.data.error.errors.length, 4)

  t.same(await listBlobs(server.dataDir), before, 'no object and no temp file left behind')
  const list = await server.app.fileStore.list({ project: 'project-a', limit: 100, order: 'asc', now: Date.now() / 1000 })
  t.same(list.files, [], 'no row left behind')
})

t.test('a bad filename for a batch file is refused in either field order', async (t) => {
  const server = await startServer(t)
  const content = jsonl(line('1'))
  for (const parts of [[purpose('batch'), filePart(content, 'batch.json')], [filePart(content, 'batch.txt'), purpose('batch')]]) {
    const res = await postMultipart(`${server.url}/v1/files`, parts, { key: KEY_A })
    t.equal(res.status, 400)
    const { error } = res.json()
    t.equal(error.code, 'invalid_batch_file')
    t.same(error.errors.map((e: { code: string }) => e.code), ['invalid_file_format'])
  }
  t.same((await listBlobs(server.dataDir)).filter((b) => !b.startsWith('.tmp/')), [])
})

t.test('other purposes are stored without validation; unknown purposes are refused', async (t) => {
  const server = await startServer(t)
  const content = Buffer.from('not json at all\n\n\x00binary')
  const ok = await postMultipart(`${server.url}/v1/files`, [filePart(content, 'notes.txt'), purpose('user_data')], { key: KEY_A })
  t.equal(ok.status, 200, ok.body)
  t.equal(ok.json().purpose, 'user_data')
  t.equal(ok.json().bytes, content.length)

  const bad = await postMultipart(`${server.url}/v1/files`, [filePart(content, 'notes.txt'), purpose('nonsense')], { key: KEY_A })
  t.equal(bad.status, 400)
  t.same(bad.json().error, {
    message: '\'nonsense\' is not one of \'assistants\', \'batch\', \'fine-tune\', \'vision\', \'user_data\', \'evals\' - \'purpose\'',
    type: 'invalid_request_error',
    param: 'purpose',
    code: 'invalid_value'
  })
  const before = await listBlobs(server.dataDir)
  const missingPurpose = await postMultipart(`${server.url}/v1/files`, [filePart(content, 'notes.txt')], { key: KEY_A })
  t.equal(missingPurpose.status, 400)
  t.equal(missingPurpose.json().error.param, 'purpose')
  t.equal(missingPurpose.json().error.code, 'missing_required_parameter')
  const missingFile = await postMultipart(`${server.url}/v1/files`, [purpose('batch')], { key: KEY_A })
  t.equal(missingFile.status, 400)
  t.equal(missingFile.json().error.param, 'file')
  const textFile = await postMultipart(`${server.url}/v1/files`, [{ name: 'file', value: 'abc' }, purpose('batch')], { key: KEY_A })
  t.equal(textFile.status, 400)
  t.equal(textFile.json().error.param, 'file')
  const twoFiles = await postMultipart(`${server.url}/v1/files`, [filePart(jsonl(line('1'))), filePart(jsonl(line('2'))), purpose('batch')], { key: KEY_A })
  t.equal(twoFiles.status, 400, twoFiles.body)
  t.same(await listBlobs(server.dataDir), before, 'refused uploads leave nothing')
})

t.test('authentication and project isolation', async (t) => {
  const server = await startServer(t)
  const content = jsonl(line('1'))
  const stored = await postMultipart(`${server.url}/v1/files`, [filePart(content), purpose('batch')], { key: KEY_A })
  const id = stored.json().id

  const missing = await postMultipart(`${server.url}/v1/files`, [filePart(content), purpose('batch')])
  t.equal(missing.status, 401)
  t.equal(missing.json().error.code, 'missing_api_key')
  const wrong = await postMultipart(`${server.url}/api/v1/files`, [filePart(content), purpose('batch')], { key: 'sk-not-a-real-key-000000' })
  t.equal(wrong.status, 401)
  t.same(wrong.json(), {
    success: false,
    code: '401',
    message: 'Incorrect API key provided.',
    data: { error: { message: 'Incorrect API key provided.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } }
  })
  t.equal((await getJson(`${server.url}/v1/files/${id}`)).status, 401)

  const other = await getJson(`${server.url}/v1/files/${id}`, KEY_B)
  const absent = await getJson(`${server.url}/v1/files/file-01J00000000000000000000000`, KEY_B)
  t.equal(other.status, 404)
  t.equal(absent.status, 404)
  t.same(other.json().error, { ...absent.json().error, message: `No such File object: ${id}` }, 'another project\'s file looks exactly like a missing one')
  const garbage = await getJson(`${server.url}/api/v1/files/..%2F..%2Fetc`, KEY_A)
  t.equal(garbage.status, 404)
  t.equal(garbage.json().success, false)
})

t.test('request shapes that are not uploads get clear errors in the family\'s shape', async (t) => {
  const server = await startServer(t)
  const { send } = await import('../helpers/multipart.js')
  const json = await send(`${server.url}/v1/files`, 'POST', { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json' }, Buffer.from('{"purpose":"batch"}'))
  t.equal(json.status, 415)
  t.equal(json.json().error.code, 'unsupported_media_type')
  const unknown = await getJson(`${server.url}/api/v1/nothing-here`, KEY_A)
  t.equal(unknown.status, 404)
  t.equal(unknown.json().success, false)
  t.equal(unknown.json().data.error.code, 'unknown_url')
})
