import { createHash } from 'node:crypto'
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import t from 'tap'
import { KEY_A, objectKeyOf, startServer } from '../helpers/app.js'
import { postMultipart, type Part } from '../helpers/multipart.js'
import { bucketClient, serviceEnv, startS3Server } from '../helpers/s3-server.js'

/** The service on STORAGE_DRIVER=s3, configured only through its environment variables. */
t.test('uploads through the S3 driver: valid files land byte-exact, invalid ones leave the bucket as it was', async (t) => {
  const s3 = await startS3Server(t)
  const server = await startServer(t, { ...serviceEnv(s3), S3_PART_SIZE_BYTES: String(5 * 1024 * 1024) })
  const client = bucketClient(s3, t)
  const keys = async () => ((await client.send(new ListObjectsV2Command({ Bucket: s3.bucket }))).Contents ?? []).filter((o) => o.Key !== 'files/.deployment').map((o) => `${o.Key ?? ''}:${o.Size ?? 0}`).sort()

  const line = (i: number) => JSON.stringify({ custom_id: `r${i}`, method: 'POST', url: '/v1/embeddings', body: { model: 'e', input: 'y'.repeat(300) } })
  // Several 5 MiB parts, so the multipart path of the driver is the one exercised.
  const content = Buffer.from(Array.from({ length: 40000 }, (_, i) => line(i)).join('\n') + '\n')
  t.ok(content.length > 12 * 1024 * 1024)
  const parts: Part[] = [{ name: 'file', filename: 'emb.jsonl', content }, { name: 'purpose', value: 'batch' }]
  const res = await postMultipart(`${server.url}/v1/files`, parts, { key: KEY_A })
  t.equal(res.status, 200, res.body)
  const id = res.json().id as string
  const key = await objectKeyOf(server.app, id)
  t.same(await keys(), [`${key}:${content.length}`])
  const object = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
  const stored = Buffer.from(await object.Body?.transformToByteArray() ?? [])
  t.equal(createHash('sha256').update(stored).digest('hex'), createHash('sha256').update(content).digest('hex'), 'the object holds exactly the uploaded bytes')

  const bad = Buffer.concat([content, Buffer.from('{"custom_id": "r1", "method": "POST"}\n')])
  const refused = await postMultipart(`${server.url}/v1/files`, [{ name: 'file', filename: 'emb.jsonl', content: bad }, { name: 'purpose', value: 'batch' }], { key: KEY_A })
  t.equal(refused.status, 400)
  t.same(refused.json().error.errors.map((e: { code: string, line: number }) => [e.code, e.line]), [
    ['duplicate_custom_id', 40001], ['invalid_url', 40001], ['missing_required_parameter', 40001]
  ])
  t.same(await keys(), [`${key}:${content.length}`], 'the refused file left no object')
  if (s3.supports.listMultipartUploads) {
    const unfinished = await client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket }))
    t.same(unfinished.Uploads ?? [], [], 'nor an unfinished multipart upload')
  }
})

// s3rver (used when S3_TEST_ENDPOINT is unset) gives multipart objects a plain ETag.
const partsSkip = (process.env.S3_TEST_ENDPOINT ?? '') === '' ? 's3rver gives multipart objects no -<parts> ETag suffix to count parts by' : false
t.test('with the default S3_PART_SIZE_BYTES a file goes up in 8 MiB parts', { skip: partsSkip }, async (t) => {
  const s3 = await startS3Server(t)
  const server = await startServer(t, serviceEnv(s3))
  const client = bucketClient(s3, t)
  const line = JSON.stringify({ custom_id: 'r', method: 'POST', url: '/v1/embeddings', body: { model: 'e', input: 'z'.repeat(1000) } })
  // Just over 16 MiB: three parts at 8 MiB, four at the 5 MiB minimum.
  const count = Math.ceil((16 * 1024 * 1024 + 1) / (line.length + 1))
  const content = Buffer.from(Array.from({ length: count }, (_, i) => line.replace('"r"', `"r${i}"`)).join('\n'))
  const res = await postMultipart(`${server.url}/v1/files`, [{ name: 'purpose', value: 'batch' }, { name: 'file', filename: 'big.jsonl', content }], { key: KEY_A })
  t.equal(res.status, 200, res.body)
  const head = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: await objectKeyOf(server.app, res.json().id as string) }))
  t.equal(head.ContentLength, content.length)
  t.match(head.ETag, /-3"?$/, 'completed from 3 parts')
})
