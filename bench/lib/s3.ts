/**
 * The S3 server for the s3 figures, and the raw SDK operations the driver is compared
 * with. The server is the one the tests use (test/helpers/s3-server.ts): a real one from
 * S3_TEST_ENDPOINT and friends (scripts/test-services.sh starts one), else s3rver in a
 * child process, and the figure is labelled with which it was.
 */
import { DeleteObjectCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { createReadStream } from 'node:fs'
import { Readable } from 'node:stream'
import { bucketClient, startS3Server } from '../../test/helpers/s3-server.js'
import { timed } from './stats.js'

export interface S3Target {
  kind: 's3rver' | 'external'
  endpoint: string
  region: string
  bucket: string
  accessKeyId: string
  secretAccessKey: string
  client: S3Client
  close: () => Promise<void>
}

// The driver's defaults (src/storage/s3-blob-store.ts, S3_PART_SIZE_BYTES): the raw upload
// must be configured as the service is, or the ratio measures settings, not overhead.
const PART_SIZE = 8 * 1024 * 1024
const QUEUE_SIZE = 4

export async function startS3 (): Promise<S3Target> {
  const closers: Array<() => unknown> = []
  const server = await startS3Server({ teardown: (fn) => { closers.push(fn) } })
  // Configured as the driver's client: plain bodies, no trailing checksums.
  const client = bucketClient(server)
  return {
    kind: server.kind,
    endpoint: server.endpoint,
    region: server.region,
    bucket: server.bucket,
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    client,
    close: async () => {
      client.destroy()
      for (const close of closers.reverse()) await close()
    }
  }
}

/** The same file through @aws-sdk/lib-storage directly, with the driver's part size and queue. */
export async function rawUpload (s3: S3Target, file: string, key: string): Promise<number> {
  const { ms } = await timed(async () => {
    const upload = new Upload({
      client: s3.client,
      params: { Bucket: s3.bucket, Key: key, Body: createReadStream(file) },
      partSize: PART_SIZE,
      queueSize: QUEUE_SIZE,
      leavePartsOnError: false
    })
    await upload.done()
  })
  return ms
}

/** GetObject of the whole object, read to its end; returns bytes and time. */
export async function rawGet (s3: S3Target, key: string): Promise<{ bytes: number, ms: number }> {
  let bytes = 0
  const { ms } = await timed(async () => {
    const out = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
    if (!(out.Body instanceof Readable)) throw new Error('GetObject returned no Node.js stream')
    for await (const chunk of out.Body as AsyncIterable<Buffer>) bytes += chunk.length
  })
  return { bytes, ms }
}

export async function rawDelete (s3: S3Target, key: string): Promise<void> {
  await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key }))
}
