import OpenAI, { toFile } from 'openai'
import t from 'tap'
import { KEY_A, listBlobs, objectKeyOf, startServer } from '../helpers/app.js'
import { getJson, postMultipart, type Part } from '../helpers/multipart.js'

const line = (id: string) => JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model: 'm', messages: [{ role: 'user', content: 'x' }] } })
const DAY = 24 * 3600

t.test('expiry with a controlled clock: defaults, expires_after, invisibility, the sweeper', async (t) => {
  let clock = Date.UTC(2026, 0, 1) // ms
  const server = await startServer(t, { EXPIRY_SWEEP_INTERVAL_MS: '0' }, { now: () => clock })
  const client = new OpenAI({ apiKey: KEY_A, baseURL: `${server.url}/v1`, maxRetries: 0 })
  const created = clock / 1000

  const batch = await client.files.create({ file: await toFile(Buffer.from(line('1')), 'a.jsonl'), purpose: 'batch' })
  t.equal(batch.created_at, created)
  t.equal(batch.expires_at, created + 30 * DAY, 'batch files expire after 30 days by default')
  const kept = await client.files.create({ file: await toFile(Buffer.from('data'), 'a.bin'), purpose: 'user_data' })
  t.equal(kept.expires_at, null, 'other purposes never expire unless asked')
  const short = await client.files.create({
    file: await toFile(Buffer.from('data'), 'b.bin'),
    purpose: 'user_data',
    expires_after: { anchor: 'created_at', seconds: 3600 }
  })
  t.equal(short.expires_at, created + 3600, 'the SDK\'s expires_after is honoured')
  // Fields after the file, in another order.
  const late = await postMultipart(`${server.url}/api/v1/files`, [
    { name: 'file', filename: 'c.jsonl', content: Buffer.from(line('1')) },
    { name: 'expires_after[seconds]', value: '7200' },
    { name: 'purpose', value: 'batch' },
    { name: 'expires_after[anchor]', value: 'created_at' }
  ], { key: KEY_A })
  t.equal(late.json().data.expires_at, created + 7200)

  const ids = async () => (await getJson(`${server.url}/v1/files?order=asc`, KEY_A)).json().data.map((f: { id: string }) => f.id)
  t.same(await ids(), [batch.id, kept.id, short.id, late.json().data.id])

  clock += 3600 * 1000 // exactly at expires_at: expired
  t.equal((await getJson(`${server.url}/v1/files/${short.id}`, KEY_A)).status, 404, 'expired: 404 at once')
  t.equal((await getJson(`${server.url}/v1/files/${short.id}/content`, KEY_A)).status, 404)
  t.same(await ids(), [batch.id, kept.id, late.json().data.id], 'expired: absent from lists at once')
  const shortKey = await objectKeyOf(server.app, short.id)
  t.ok((await listBlobs(server.dataDir)).some((b) => b.startsWith(`${shortKey}:`)), 'the object waits for the sweeper')

  t.same(await server.app.sweepExpired(), { deleted: 1, objectErrors: 0, expiredUploads: 0, uploadPartErrors: 0 })
  t.notOk((await listBlobs(server.dataDir)).some((b) => b.startsWith(`${shortKey}:`)), 'swept: no object')
  t.equal(await server.app.fileStore.delete('project-a', short.id), null, 'swept: no row')

  const keptKey = await objectKeyOf(server.app, kept.id)
  clock += 30 * DAY * 1000
  t.same(await server.app.sweepExpired(), { deleted: 2, objectErrors: 0, expiredUploads: 0, uploadPartErrors: 0 })
  t.same(await ids(), [kept.id])
  t.same((await listBlobs(server.dataDir)).filter((b) => !b.startsWith('.tmp/')), [`${keptKey}:4`])
  t.same(await server.app.sweepExpired(), { deleted: 0, objectErrors: 0, expiredUploads: 0, uploadPartErrors: 0 }, 'nothing twice')
})

t.test('bad expires_after values are refused and store nothing', async (t) => {
  const server = await startServer(t)
  const file: Part = { name: 'file', filename: 'a.jsonl', content: Buffer.from(line('1')) }
  const cases: Array<[Part[], string]> = [
    [[{ name: 'expires_after[anchor]', value: 'last_active_at' }, { name: 'expires_after[seconds]', value: '3600' }], 'expires_after[anchor]'],
    [[{ name: 'expires_after[seconds]', value: '3600' }], 'expires_after[anchor]'],
    [[{ name: 'expires_after[anchor]', value: 'created_at' }], 'expires_after[seconds]'],
    [[{ name: 'expires_after[anchor]', value: 'created_at' }, { name: 'expires_after[seconds]', value: '3599' }], 'expires_after[seconds]'],
    [[{ name: 'expires_after[anchor]', value: 'created_at' }, { name: 'expires_after[seconds]', value: '2592001' }], 'expires_after[seconds]'],
    [[{ name: 'expires_after[anchor]', value: 'created_at' }, { name: 'expires_after[seconds]', value: '1e4' }], 'expires_after[seconds]']
  ]
  for (const [fields, param] of cases) {
    const res = await postMultipart(`${server.url}/v1/files`, [file, { name: 'purpose', value: 'batch' }, ...fields], { key: KEY_A })
    t.equal(res.status, 400, JSON.stringify(fields))
    t.equal(res.json().error.param, param)
    t.equal(res.json().error.code, 'invalid_parameter')
  }
  t.same((await listBlobs(server.dataDir)).filter((b) => !b.startsWith('.tmp/')), [])
})

t.test('BATCH_EXPIRES_AFTER_SECONDS=0 keeps batch files until deleted', async (t) => {
  const server = await startServer(t, { BATCH_EXPIRES_AFTER_SECONDS: '0' })
  const res = await postMultipart(`${server.url}/v1/files`, [{ name: 'file', filename: 'a.jsonl', content: Buffer.from(line('1')) }, { name: 'purpose', value: 'batch' }], { key: KEY_A })
  t.equal(res.json().expires_at, null)
})

t.test('the background sweeper runs on its interval', async (t) => {
  let clock = Date.UTC(2026, 0, 1)
  const server = await startServer(t, { EXPIRY_SWEEP_INTERVAL_MS: '50' }, { now: () => clock })
  const res = await postMultipart(`${server.url}/v1/files`, [
    { name: 'purpose', value: 'user_data' },
    { name: 'expires_after[anchor]', value: 'created_at' },
    { name: 'expires_after[seconds]', value: '3600' },
    { name: 'file', filename: 'a.bin', content: Buffer.from('abc') }
  ], { key: KEY_A })
  const id = res.json().id as string
  const key = await objectKeyOf(server.app, id)
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.ok((await listBlobs(server.dataDir)).some((b) => b.startsWith(`${key}:`)), 'not expired yet: kept')
  clock += 3600 * 1000
  let left = true
  for (let i = 0; i < 50 && left; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    left = (await listBlobs(server.dataDir)).some((b) => b.startsWith(`${key}:`))
  }
  t.notOk(left, 'swept by the timer')
  t.equal(await server.app.fileStore.delete('project-a', id), null, 'row gone')
})
