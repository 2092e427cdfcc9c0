import { createHash, randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import OpenAI, { toFile } from 'openai'
import t from 'tap'
import { KEY_A, KEY_B } from '../helpers/app.js'
import { BOUNDARY, postMultipart } from '../helpers/multipart.js'
import { DRIVERS, postJson, startUploadsServer } from '../helpers/uploads.js'

const MiB = 1024 * 1024
const md5 = (bytes: Buffer): string => createHash('md5').update(bytes).digest('hex')

function sdk (url: string, key = KEY_A): OpenAI {
  return new OpenAI({ apiKey: key, baseURL: `${url}/v1`, maxRetries: 0 })
}

for (const driver of DRIVERS) {
  t.test(`${driver}: the Node SDK sends parts in parallel and out of order, a part twice, and gets a byte-identical File`, async (t) => {
    const server = await startUploadsServer(t, driver)
    t.comment(`metadata on ${server.dialect}`)
    const client = sdk(server.url)
    // Parts of unequal sizes, one past the S3 driver's 8 MiB put part (a multipart put of
    // its own), the others under S3's 5 MiB minimum: OpenAI allows any size up to 64 MB.
    const sizes = [9 * MiB + 17, 1 * MiB, 3, 2 * MiB + 5]
    const chunks = sizes.map((size) => randomBytes(size))
    const content = Buffer.concat(chunks)
    const upload = await client.uploads.create({ filename: 'data.bin', purpose: 'user_data', bytes: content.length, mime_type: 'application/octet-stream' })
    t.match(upload, { object: 'upload', status: 'pending', filename: 'data.bin', bytes: content.length, purpose: 'user_data', file: null })
    t.match(upload.id, /^upload_[0-9A-Z]{26}$/)
    t.equal(upload.expires_at, upload.created_at + 3600, 'one hour, as OpenAI')

    // Sent in reverse order, all at once.
    const order = [3, 2, 1, 0]
    const sent = await Promise.all(order.map(async (i) => client.uploads.parts.create(upload.id, { data: await toFile(chunks[i] as Buffer, `part-${i}`) })))
    const ids: string[] = []
    order.forEach((i, n) => { ids[i] = (sent[n] as { id: string }).id })
    for (const part of sent) t.match(part, { object: 'upload.part', upload_id: upload.id, id: /^part_[0-9A-Z]{26}$/ })
    // Part 1 again, as a client retries a part whose answer it lost: the second is kept.
    const retried = await client.uploads.parts.create(upload.id, { data: await toFile(chunks[1] as Buffer, 'part-1') })
    const unused = ids[1] as string
    ids[1] = retried.id

    const done = await client.uploads.complete(upload.id, { part_ids: ids, md5: md5(content) })
    t.match(done, { id: upload.id, status: 'completed', file: { object: 'file', bytes: content.length, filename: 'data.bin', purpose: 'user_data', status: 'processed' } })
    const fileId = done.file?.id as string
    const stored = Buffer.from(await (await client.files.content(fileId)).arrayBuffer())
    t.equal(stored.length, content.length)
    t.ok(stored.equals(content), 'the File holds the parts\' bytes in the order listed')
    t.same(await server.leftovers(), [], 'no part (the unused one included) and no unfinished multipart upload left')
    t.not(unused, retried.id)

    const again = await client.uploads.complete(upload.id, { part_ids: ids })
    t.match(again, { status: 'completed', file: { id: fileId } }, 'a retried completion answers the same File')
    const cancel = await postJson(`${server.url}/v1/uploads/${upload.id}/cancel`, KEY_A, {})
    t.equal(cancel.status, 400)
    t.match(cancel.json().error, { code: 'upload_not_pending', param: 'upload_id' })
  })

  t.test(`${driver}: an invalid batch file sent in parts is refused as a direct upload of the same bytes, and leaves nothing`, async (t) => {
    const server = await startUploadsServer(t, driver)
    const good = (i: number) => JSON.stringify({ custom_id: `r${i}`, method: 'POST', url: '/v1/embeddings', body: { model: 'e', input: 'x'.repeat(200) } })
    const lines = Array.from({ length: 3000 }, (_, i) => good(i))
    lines[1200] = '{"custom_id": "r5", "method": "POST", "url": "/v1/nowhere"}'
    lines[2999] = 'not json'
    const content = Buffer.from(lines.join('\n') + '\n')
    const before = await server.objects()

    const direct = await postMultipart(`${server.url}/v1/files`, [{ name: 'purpose', value: 'batch' }, { name: 'file', filename: 'bad.jsonl', content }], { key: KEY_A })
    t.equal(direct.status, 400)

    const created = await postJson(`${server.url}/v1/uploads`, KEY_A, { filename: 'bad.jsonl', purpose: 'batch', bytes: content.length, mime_type: 'text/jsonl' })
    t.equal(created.status, 200)
    const uploadId = created.json().id as string
    // Cut mid-line, so a line spans two parts.
    const cuts = [0, 100_001, 400_003, content.length]
    const partIds: string[] = []
    for (let i = 0; i + 1 < cuts.length; i++) {
      const res = await postMultipart(`${server.url}/v1/uploads/${uploadId}/parts`, [{ name: 'data', filename: 'blob', content: content.subarray(cuts[i], cuts[i + 1]) }], { key: KEY_A })
      t.equal(res.status, 200, res.body)
      partIds.push(res.json().id as string)
    }
    const completed = await postJson(`${server.url}/v1/uploads/${uploadId}/complete`, KEY_A, { part_ids: partIds })
    t.equal(completed.status, 400)
    t.same(completed.json(), direct.json(), 'the same error object, line numbers and all')
    t.match(completed.json().error, { code: 'invalid_batch_file', param: 'file' })
    t.same(direct.json().error.errors.map((e: { code: string, line: number }) => [e.code, e.line]), [
      ['duplicate_custom_id', 1201], ['invalid_url', 1201], ['missing_required_parameter', 1201], ['invalid_json_line', 3000]
    ])
    t.same(await server.objects(), before, 'no object, no part left')
    t.same(await server.leftovers(), [])
    t.same((await server.app.fileStore.scan(undefined, 10)).length, 0, 'no file row')
    const retry = await postJson(`${server.url}/v1/uploads/${uploadId}/complete`, KEY_A, { part_ids: partIds })
    t.match(retry.json().error, { code: 'upload_not_pending', message: /is cancelled/ }, 'the refused upload is cancelled')
  })

  t.test(`${driver}: cancel and expiry leave no part and no multipart upload`, async (t) => {
    let clock = Date.now()
    const server = await startUploadsServer(t, driver, { EXPIRY_SWEEP_INTERVAL_MS: '0' }, () => clock)
    const client = sdk(server.url)
    const bytes = randomBytes(6 * MiB)
    const make = async () => client.uploads.create({ filename: 'x.bin', purpose: 'assistants', bytes: bytes.length, mime_type: 'application/octet-stream' })

    const cancelled = await make()
    await client.uploads.parts.create(cancelled.id, { data: await toFile(bytes.subarray(0, 3 * MiB), 'a') })
    await client.uploads.parts.create(cancelled.id, { data: await toFile(bytes.subarray(3 * MiB), 'b') })
    t.equal((await server.leftovers()).length, 2, 'two part objects while pending')
    t.match(await client.uploads.cancel(cancelled.id), { id: cancelled.id, status: 'cancelled', file: null })
    t.same(await server.leftovers(), [], 'cancel removed the parts')
    t.match(await client.uploads.cancel(cancelled.id), { status: 'cancelled' }, 'a second cancel answers the same')
    const late = await postMultipart(`${server.url}/v1/uploads/${cancelled.id}/parts`, [{ name: 'data', filename: 'blob', content: Buffer.from('late') }], { key: KEY_A })
    t.equal(late.status, 400)
    t.match(late.json().error, { code: 'upload_not_pending', message: /is cancelled/ })

    const expiring = await make()
    await client.uploads.parts.create(expiring.id, { data: await toFile(bytes, 'all') })
    clock += 3601 * 1000
    const refused = await postJson(`${server.url}/v1/uploads/${expiring.id}/complete`, KEY_A, { part_ids: [] })
    t.match(refused.json().error, { code: 'upload_not_pending', message: /is expired/ }, 'past its hour, before the sweep')
    t.match(await server.app.sweepExpired(), { expiredUploads: 1, uploadPartErrors: 0 })
    t.same(await server.leftovers(), [], 'the sweeper removed the parts')
    t.match(await server.app.sweepExpired(), { expiredUploads: 0 }, 'nothing twice')
    t.same(await server.objects(), [], 'nothing at all stored')
  })
}

for (const driver of DRIVERS) {
  t.test(`${driver}: a client gone mid-part leaves no part, and the upload takes the part again`, async (t) => {
    const server = await startUploadsServer(t, driver)
    const upload = (await postJson(`${server.url}/v1/uploads`, KEY_A, { filename: 'g.bin', purpose: 'user_data', bytes: 3, mime_type: 'x' })).json()
    await new Promise<void>((resolve) => {
      const req = request(`${server.url}/v1/uploads/${String(upload.id)}/parts`, { method: 'POST', headers: { authorization: `Bearer ${KEY_A}`, 'content-type': `multipart/form-data; boundary=${BOUNDARY}` } })
      req.on('error', () => resolve())
      req.write(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="data"; filename="blob"\r\n\r\n`)
      // Past the S3 driver's 8 MiB part, so an S3 multipart put is under way when the client goes.
      req.write(Buffer.alloc(12 * MiB, 5), () => { setTimeout(() => { req.destroy(); resolve() }, 300) })
    })
    let left = await server.leftovers()
    for (let i = 0; i < 50 && left.length > 0; i++) {
      await sleep(100)
      left = await server.leftovers()
    }
    t.same(left, [], 'no part object, temp file or multipart upload')
    const part = await postMultipart(`${server.url}/v1/uploads/${String(upload.id)}/parts`, [{ name: 'data', filename: 'blob', content: Buffer.from('abc') }], { key: KEY_A })
    const done = await postJson(`${server.url}/v1/uploads/${String(upload.id)}/complete`, KEY_A, { part_ids: [part.json().id] })
    t.match(done.json(), { status: 'completed', file: { bytes: 3 } }, 'the upload is still pending and completes with the part sent again')
  })
}

t.test('a completion goes on when its client goes away; completing again answers its File', async (t) => {
  const server = await startUploadsServer(t, 'fs')
  const content = randomBytes(48 * MiB)
  const upload = (await postJson(`${server.url}/v1/uploads`, KEY_A, { filename: 'g.bin', purpose: 'user_data', bytes: content.length, mime_type: 'x' })).json()
  const ids: string[] = []
  for (let at = 0; at < content.length; at += 16 * MiB) {
    ids.push((await postMultipart(`${server.url}/v1/uploads/${String(upload.id)}/parts`, [{ name: 'data', filename: 'blob', content: content.subarray(at, at + 16 * MiB) }], { key: KEY_A })).json().id as string)
  }
  await new Promise<void>((resolve) => {
    const req = request(`${server.url}/v1/uploads/${String(upload.id)}/complete`, { method: 'POST', headers: { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json' } })
    req.on('error', () => resolve())
    // Gone as soon as the body is out: before the 48 MiB are copied.
    req.end(JSON.stringify({ part_ids: ids }), () => { setTimeout(() => { req.destroy(); resolve() }, 5) })
  })
  const seen = new Set<string>()
  let answer = await postJson(`${server.url}/v1/uploads/${String(upload.id)}/complete`, KEY_A, { part_ids: ids })
  for (let i = 0; i < 100 && answer.status !== 200; i++) {
    seen.add(String(answer.json().error?.message))
    await sleep(50)
    answer = await postJson(`${server.url}/v1/uploads/${String(upload.id)}/complete`, KEY_A, { part_ids: ids })
  }
  t.equal(answer.status, 200)
  t.match(answer.json(), { status: 'completed', file: { bytes: content.length } })
  for (const message of seen) t.match(message, /is being completed; send the completion again/, 'meanwhile: being completed')
  const stored = Buffer.from(await (await fetch(`${server.url}/v1/files/${String(answer.json().file.id)}/content`, { headers: { authorization: `Bearer ${KEY_A}` } })).arrayBuffer())
  t.ok(stored.equals(content), 'the File is whole')
  t.same(await server.leftovers(), [])
})

t.test('refusals: other project, part list errors, limits, the envelope family', async (t) => {
  const server = await startUploadsServer(t, 'fs', { UPLOAD_MAX_BYTES: String(10 * MiB), UPLOAD_MAX_PARTS: '3', PROJECT_MAX_PENDING_UPLOADS: '3' })
  const url = `${server.url}/v1`
  const create = async (body: Record<string, unknown>, key = KEY_A) => postJson(`${url}/uploads`, key, { filename: 'f.txt', purpose: 'user_data', mime_type: 'text/plain', ...body })
  const addPart = async (id: string, content: Buffer, key = KEY_A, name = 'data') => postMultipart(`${url}/uploads/${id}/parts`, [{ name, filename: 'blob', content }], { key })

  const big = await create({ bytes: 10 * MiB + 1 })
  t.equal(big.status, 400)
  t.match(big.json().error, { code: 'upload_too_large', param: 'bytes' })
  const bigBatch = await create({ bytes: 600 * MiB, purpose: 'batch' })
  t.match(bigBatch.json().error, { code: 'upload_too_large', param: 'bytes' })

  const upload = (await create({ bytes: 10 })).json()
  const otherProject = await addPart(upload.id as string, Buffer.from('x'), KEY_B)
  t.equal(otherProject.status, 404)
  t.match(otherProject.json().error, { code: 'upload_not_found', param: 'upload_id' })
  t.equal((await postJson(`${url}/uploads/${String(upload.id)}/complete`, KEY_B, { part_ids: [] })).status, 404)
  t.equal((await postJson(`${url}/uploads/${String(upload.id)}/cancel`, KEY_B, {})).status, 404)
  t.equal((await postJson(`${url}/uploads/upload_nope/cancel`, KEY_A, {})).status, 404)

  const wrongField = await addPart(upload.id as string, Buffer.from('x'), KEY_A, 'file')
  t.equal(wrongField.status, 400)
  const p1 = (await addPart(upload.id as string, Buffer.from('hello'))).json().id as string
  const p2 = (await addPart(upload.id as string, Buffer.from('world'))).json().id as string
  const p3 = (await addPart(upload.id as string, Buffer.from('!'))).json().id as string
  const fourth = await addPart(upload.id as string, Buffer.from('?'))
  t.equal(fourth.status, 400)
  t.match(fourth.json().error, { code: 'too_many_parts' })

  const complete = async (body: Record<string, unknown>) => postJson(`${url}/uploads/${String(upload.id)}/complete`, KEY_A, body)
  t.match((await complete({ part_ids: [p1, 'part_01J9Z3N4Q8X7V6T5R4P3M2K1H0'] })).json().error, { code: 'part_not_found', param: 'part_ids' })
  t.match((await complete({ part_ids: [p1, p1] })).json().error, { code: 'duplicate_part', param: 'part_ids' })
  t.match((await complete({ part_ids: [p1, p2, p3] })).json().error, { code: 'upload_bytes_mismatch' }, '11 bytes for 10')
  t.match((await complete({ part_ids: [p1, p2], md5: md5(Buffer.from('nope')) })).json().error, { code: 'md5_mismatch', param: 'md5' })
  t.match((await complete({ part_ids: [p1, p2] })).json().error, { code: 'upload_not_pending' }, 'a refused md5 cancels the upload')

  // What an upload's parts may hold: twice its bytes and one part (64 MiB).
  const small = (await create({ bytes: 1 })).json().id as string
  t.equal((await addPart(small, Buffer.alloc(64 * MiB, 3))).status, 200)
  const past = await addPart(small, Buffer.alloc(3, 3))
  t.equal(past.status, 400)
  t.match(past.json().error, { code: 'upload_parts_too_large', param: 'data' })
  t.equal((await addPart(small, Buffer.alloc(2, 3))).status, 200, 'up to the allowance exactly')
  t.equal((await postJson(`${url}/uploads/${small}/cancel`, KEY_A, {})).status, 200)

  // The limit on pending uploads: the cancelled ones no longer count.
  for (let i = 0; i < 3; i++) t.equal((await create({ bytes: 1 })).status, 200)
  const overLimit = await create({ bytes: 1 })
  t.equal(overLimit.status, 403)
  t.match(overLimit.json().error, { code: 'too_many_uploads' })
  t.equal((await create({ bytes: 1 }, KEY_B)).status, 200, 'per project')

  // The envelope family: the same service, the answer wrapped.
  const wrapped = await postJson(`${server.url}/api/v1/uploads`, KEY_B, { filename: 'w.txt', purpose: 'user_data', bytes: 2, mime_type: 'text/plain' })
  t.match(wrapped.json(), { success: true, code: '200', message: 'successful', data: { object: 'upload', status: 'pending' } })
  const wrappedId = wrapped.json().data.id as string
  const part = await postMultipart(`${server.url}/api/v1/uploads/${wrappedId}/parts`, [{ name: 'data', filename: 'blob', content: Buffer.from('ok') }], { key: KEY_B })
  t.match(part.json(), { success: true, data: { object: 'upload.part', upload_id: wrappedId } })
  const done = await postJson(`${server.url}/api/v1/uploads/${wrappedId}/complete`, KEY_B, { part_ids: [part.json().data.id] })
  t.match(done.json(), { success: true, data: { status: 'completed', file: { object: 'file', bytes: 2 } } })
  const missing = await postJson(`${server.url}/api/v1/uploads/${wrappedId}/cancel`, KEY_A, {})
  t.match(missing.json(), { success: false, code: '404', data: { error: { code: 'upload_not_found' } } })
})

t.test('expires_after at creation is the File\'s lifetime; a batch File without it gets BATCH_EXPIRES_AFTER_SECONDS', async (t) => {
  const server = await startUploadsServer(t, 'fs')
  const line = Buffer.from(JSON.stringify({ custom_id: '1', method: 'POST', url: '/v1/embeddings', body: { model: 'e', input: 'x' } }) + '\n')
  const make = async (extra: Record<string, unknown>) => {
    const upload = (await postJson(`${server.url}/v1/uploads`, KEY_A, { filename: 'b.jsonl', purpose: 'batch', bytes: line.length, mime_type: 'text/jsonl', ...extra })).json()
    const part = (await postMultipart(`${server.url}/v1/uploads/${String(upload.id)}/parts`, [{ name: 'data', filename: 'blob', content: line }], { key: KEY_A })).json()
    return (await postJson(`${server.url}/v1/uploads/${String(upload.id)}/complete`, KEY_A, { part_ids: [part.id] })).json().file as { created_at: number, expires_at: number | null }
  }
  const asked = await make({ expires_after: { anchor: 'created_at', seconds: 7200 } })
  t.equal(asked.expires_at, asked.created_at + 7200)
  const fallback = await make({})
  t.equal(fallback.expires_at, fallback.created_at + 2592000)
  const bad = await postJson(`${server.url}/v1/uploads`, KEY_A, { filename: 'b.jsonl', purpose: 'batch', bytes: 1, mime_type: 'text/jsonl', expires_after: { anchor: 'created_at', seconds: 60 } })
  t.equal(bad.status, 400)
  t.match(bad.json().error, { param: 'expires_after.seconds' })
})

t.test('a part over 64 MiB is refused over a real socket and nothing of it is kept', async (t) => {
  const server = await startUploadsServer(t, 'fs')
  const upload = (await postJson(`${server.url}/v1/uploads`, KEY_A, { filename: 'f.bin', purpose: 'user_data', bytes: 100 * MiB, mime_type: 'application/octet-stream' })).json()
  const res = await postMultipart(`${server.url}/v1/uploads/${String(upload.id)}/parts`, [{ name: 'data', filename: 'blob', content: Buffer.alloc(64 * MiB + 1, 1) }], { key: KEY_A })
  t.equal(res.status, 413)
  t.match(res.json().error, { code: 'part_too_large', param: 'data' })
  t.same(await server.leftovers(), [], 'no part object, no temp file')
  const exact = await postMultipart(`${server.url}/v1/uploads/${String(upload.id)}/parts`, [{ name: 'data', filename: 'blob', content: Buffer.alloc(64 * MiB, 2) }], { key: KEY_A })
  t.equal(exact.status, 200, 'exactly 64 MiB is a part')
})
