import { ListObjectsV2Command } from '@aws-sdk/client-s3'
import OpenAI, { toFile } from 'openai'
import t from 'tap'
import { KEY_A, startServer } from '../helpers/app.js'
import { freshDatabase, NO_POSTGRES_REASON, testDatabaseUrl } from '../helpers/postgres.js'
import { bucketClient, serviceEnv, startS3Server } from '../helpers/s3-server.js'

const line = (id: string) => JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/embeddings', body: { model: 'e', input: id } })

t.test('two instances on one PostgreSQL and one bucket serve the same files; sweepers never double-delete', async (t) => {
  const serverUrl = testDatabaseUrl()
  if (serverUrl === undefined) {
    t.pass('skipped', { skip: NO_POSTGRES_REASON })
    return
  }
  const databaseUrl = await freshDatabase(t, serverUrl)
  const s3 = await startS3Server(t)
  let clock = Date.UTC(2026, 5, 1)
  const env = {
    DATABASE_URL: databaseUrl,
    ...serviceEnv(s3),
    EXPIRY_SWEEP_INTERVAL_MS: '0'
  }
  // Both start together: their migrations must not trip over each other.
  const [one, two] = await Promise.all([startServer(t, env, { now: () => clock }), startServer(t, env, { now: () => clock })])
  const viaOne = new OpenAI({ apiKey: KEY_A, baseURL: `${one.url}/v1`, maxRetries: 0 })
  const viaTwo = new OpenAI({ apiKey: KEY_A, baseURL: `${two.url}/v1`, maxRetries: 0 })

  const file = await viaOne.files.create({ file: await toFile(Buffer.from(line('a')), 'a.jsonl'), purpose: 'batch' })
  t.same(await viaTwo.files.retrieve(file.id), file, 'uploaded through one, retrieved through the other')
  const listed = []
  for await (const f of viaTwo.files.list({ limit: 1 })) listed.push(f.id)
  t.same(listed, [file.id], 'listed through the other')
  t.equal(await (await viaTwo.files.content(file.id)).text(), line('a'), 'read through the other')
  t.same(await viaTwo.files.delete(file.id), { id: file.id, object: 'file', deleted: true }, 'deleted through the other')
  t.ok(await viaOne.files.retrieve(file.id).catch((e: unknown) => e) instanceof OpenAI.NotFoundError, 'gone for the first too')

  const uploaded: string[] = []
  for (let i = 0; i < 24; i++) {
    const via = i % 2 === 0 ? viaOne : viaTwo
    const f = await via.files.create({ file: await toFile(Buffer.from(line(`e${i}`)), `e${i}.jsonl`), purpose: 'user_data', expires_after: { anchor: 'created_at', seconds: 3600 } })
    uploaded.push(f.id)
  }
  clock += 3601 * 1000
  const [a, b] = await Promise.all([one.app.sweepExpired(), two.app.sweepExpired()])
  t.equal(a.objectErrors + b.objectErrors, 0, 'no sweeper error')
  t.equal(a.deleted + b.deleted, uploaded.length, 'every expired file deleted exactly once between the two')
  const client = bucketClient(s3, t)
  t.same(((await client.send(new ListObjectsV2Command({ Bucket: s3.bucket }))).Contents ?? []).map((o) => o.Key), ['files/.deployment'], 'no object left but the deployment marker')
  t.same((await one.app.fileStore.scan(undefined, 100)).length, 0, 'no row left')
})
