import {
  HeadBucketCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  S3Client,
  S3ServiceException
} from '@aws-sdk/client-s3'
import { PassThrough } from 'node:stream'
import t from 'tap'
import { StorageFullError } from '../../src/storage/blob-store.js'
import { createS3BlobStore, type S3BlobStoreOptions } from '../../src/storage/s3-blob-store.js'
import { toStorageError } from '../../src/storage/s3-support.js'
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js'
import { blobStoreContract, patternSlice, patternStream } from './blob-store-contract.js'

const MIB = 1024 * 1024

function storeOptions (s3: S3TestServer): S3BlobStoreOptions {
  const { endpoint, region, bucket, accessKeyId, secretAccessKey } = s3
  return { endpoint, region, bucket, accessKeyId, secretAccessKey, partSizeBytes: 5 * MIB, queueSize: 2 }
}

function rawClient (s3: S3TestServer): S3Client {
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey }
  })
}

t.test('contract', async (t) => {
  const s3 = await startS3Server(t)
  const store = createS3BlobStore(storeOptions(s3))
  const client = rawClient(s3)
  t.teardown(async () => {
    await store.close()
    client.destroy()
  })
  t.equal(store.driver, 's3')
  blobStoreContract(t, {
    store,
    // Four 5 MiB parts: several parts, two uploaded at a time.
    largeBytes: 20 * MIB,
    midwayBytes: 5 * MIB,
    assertNoLeftovers: async (t) => {
      const skip = s3.supports.listMultipartUploads
        ? false
        : `${s3.kind} has no ListMultipartUploads: cannot prove the multipart upload was aborted`
      await t.test('no unfinished multipart upload is left', { skip }, async (t) => {
        const out = await client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket }))
        t.same(out.Uploads ?? [], [])
      })
    }
  })
})

t.test('check()', async (t) => {
  const s3 = await startS3Server(t)
  const secret = s3.secretAccessKey

  t.test('passes for the bucket', async (t) => {
    const store = createS3BlobStore(storeOptions(s3))
    t.teardown(() => store.close())
    await t.resolves(store.check())
  })

  t.test('names a missing bucket, never the secret', async (t) => {
    const store = createS3BlobStore({ ...storeOptions(s3), bucket: 'no-such-bucket-here' })
    t.teardown(() => store.close())
    const err = await store.check().then(() => null, (e: unknown) => e)
    t.ok(err instanceof Error, 'rejects')
    const message = err instanceof Error ? err.message : ''
    t.match(message, `S3 bucket "no-such-bucket-here" at ${s3.endpoint} does not exist`)
    t.notMatch(message, secret)
  })

  t.test('says an unknown access key id is refused, never the secret', async (t) => {
    const store = createS3BlobStore({ ...storeOptions(s3), accessKeyId: 'NOT-A-KNOWN-KEY', secretAccessKey: 'sekrit-value-123' })
    t.teardown(() => store.close())
    const err = await store.check().then(() => null, (e: unknown) => e)
    const message = err instanceof Error ? err.message : ''
    t.match(message, `S3 bucket "${s3.bucket}" at ${s3.endpoint} refused the credentials (access key id "NOT-A-KNOWN-KEY")`)
    t.notMatch(message, 'sekrit-value-123')
  })

  t.test('says a wrong secret key is refused, never the secret', { skip: s3.supports.signatures ? false : `${s3.kind} does not verify SigV4 signatures` }, async (t) => {
    const store = createS3BlobStore({ ...storeOptions(s3), secretAccessKey: 'wrong-secret-456' })
    t.teardown(() => store.close())
    const err = await store.check().then(() => null, (e: unknown) => e)
    const message = err instanceof Error ? err.message : ''
    t.match(message, 'refused the credentials')
    t.notMatch(message, 'wrong-secret-456')
  })

  t.test('says an endpoint nobody listens on is not reachable', async (t) => {
    const store = createS3BlobStore({ ...storeOptions(s3), endpoint: 'http://127.0.0.1:9' })
    t.teardown(() => store.close())
    await t.rejects(store.check(), { message: /^S3 bucket "[^"]+" at http:\/\/127\.0\.0\.1:9 is not reachable: / })
  })
})

t.test('a client handed in is used and left open on close', async (t) => {
  const s3 = await startS3Server(t)
  const client = rawClient(s3)
  t.teardown(() => client.destroy())
  const store = createS3BlobStore({ bucket: s3.bucket, client })
  await store.put('handed/in', patternStream('x', 5))
  await store.close()
  await t.resolves(client.send(new HeadBucketCommand({ Bucket: s3.bucket })), 'client still works')
  t.equal((await createS3BlobStore({ bucket: s3.bucket, client }).head('handed/in'))?.size, 5)
})

/** A client that records every command it sends and can run a hook before each. */
function recordingClient (s3: S3TestServer, before?: (command: string) => void): { client: S3Client, sent: string[] } {
  const client = rawClient(s3)
  const sent: string[] = []
  client.middlewareStack.add((next, context) => async (args) => {
    const command = context.commandName ?? '?'
    sent.push(command)
    before?.(command)
    return await next(args)
  }, { step: 'initialize', name: 'recordCommands' })
  return { client, sent }
}

t.test('multipart puts, seen from the wire', async (t) => {
  const s3 = await startS3Server(t)

  t.test('a large body goes up in parts and is completed', async (t) => {
    const { client, sent } = recordingClient(s3)
    t.teardown(() => client.destroy())
    const store = createS3BlobStore({ bucket: s3.bucket, client, partSizeBytes: 5 * MIB })
    await store.put('wire/large', patternStream('wire', 11 * MIB))
    t.same(sent, ['CreateMultipartUploadCommand', 'UploadPartCommand', 'UploadPartCommand',
      'UploadPartCommand', 'CompleteMultipartUploadCommand'])
  })

  // What s3rver can still prove without ListMultipartUploads: the abort is sent, and the
  // upload is never completed. Whether the server then dropped the parts it cannot show.
  t.test('a body failing after two parts: AbortMultipartUpload is sent, nothing completed', async (t) => {
    const { client, sent } = recordingClient(s3)
    t.teardown(() => client.destroy())
    const store = createS3BlobStore({ bucket: s3.bucket, client, partSizeBytes: 5 * MIB, queueSize: 1 })
    await t.rejects(store.put('wire/broken', patternStream('wire', 11 * MIB, new Error('gone'))), { message: 'gone' })
    t.same(sent.filter((c) => c !== 'AbortMultipartUploadCommand'),
      ['CreateMultipartUploadCommand', 'UploadPartCommand', 'UploadPartCommand'])
    t.ok(sent.includes('AbortMultipartUploadCommand'), 'abort attempted')
    t.equal(await store.head('wire/broken'), null)
  })

  t.test('an abort while the single PutObject is in flight deletes the object', async (t) => {
    const controller = new AbortController()
    const { client, sent } = recordingClient(s3, (command) => {
      if (command === 'PutObjectCommand') controller.abort()
    })
    t.teardown(() => client.destroy())
    const store = createS3BlobStore({ bucket: s3.bucket, client })
    const err = await store.put('wire/late-abort', patternStream('x', 100), { signal: controller.signal })
      .catch((e: unknown) => e)
    t.match(err, { name: 'AbortError' })
    t.same(sent, ['PutObjectCommand', 'DeleteObjectCommand'])
    t.equal(await store.head('wire/late-abort'), null, 'the object S3 took is gone again')
  })
})

// S3 allows 10,000 parts per upload: at 8 MiB that is ~78 GiB, far above any file limit,
// and fewer, larger parts mean fewer requests. Checked on the server's side, not the SDK's.
t.test('by default parts are 8 MiB, as the server records them', async (t) => {
  const s3 = await startS3Server(t)
  const { partSizeBytes: _fiveMiB, ...defaults } = storeOptions(s3)
  const store = createS3BlobStore(defaults)
  const client = rawClient(s3)
  t.teardown(async () => {
    await store.close()
    client.destroy()
  })

  const etagSkip = s3.kind === 'external' ? false : `${s3.kind} gives multipart objects no -<parts> ETag suffix`
  t.test('a completed 17 MiB object was assembled from 3 parts', { skip: etagSkip }, async (t) => {
    const put = await store.put('parts/complete', patternStream('parts', 17 * MIB))
    // A multipart ETag is md5-of-part-md5s followed by -<number of parts>: 8 + 8 + 1 MiB.
    t.match(put.etag, /-3"?$/)
  })

  const skip = s3.supports.listMultipartUploads ? false : `${s3.kind} has no ListMultipartUploads/ListParts`
  t.test('an upload in flight lists a first part of exactly 8 MiB', { skip }, async (t) => {
    const key = 'parts/in-flight'
    const body = new PassThrough()
    const put = store.put(key, body)
    for (let offset = 0; offset < 8 * MIB + 64 * 1024; offset += 64 * 1024) {
      if (!body.write(patternSlice('flight', offset, offset + 64 * 1024 - 1))) {
        await new Promise((resolve) => body.once('drain', resolve))
      }
    }
    let sizes: number[] = []
    for (let i = 0; i < 200 && sizes.length === 0; i++) {
      const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: key }))
      const uploadId = uploads.Uploads?.[0]?.UploadId
      if (uploadId !== undefined) {
        const parts = await client.send(new ListPartsCommand({ Bucket: s3.bucket, Key: key, UploadId: uploadId }))
        sizes = (parts.Parts ?? []).map((p) => p.Size ?? 0)
      }
      if (sizes.length === 0) await new Promise((resolve) => setTimeout(resolve, 25))
    }
    t.strictSame(sizes, [8 * MIB], 'one part stored so far, of 8 MiB')
    body.end()
    t.equal((await put).bytes, 8 * MIB + 64 * 1024)
    t.match((await store.head(key))?.etag, /-2"?$/, 'completed from 2 parts')
  })
})

t.test('options are validated', async (t) => {
  t.throws(() => createS3BlobStore({ bucket: 'b', partSizeBytes: 5 * MIB - 1 }), /at least 5242880 bytes/)
  t.throws(() => createS3BlobStore({ bucket: 'b', queueSize: 0 }), /queue size/)
})

t.test('toStorageError maps "too large" and "insufficient storage" to StorageFullError', async (t) => {
  const s3Error = (name: string, status: number): S3ServiceException => new S3ServiceException({
    name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name
  })
  const tooLarge = s3Error('EntityTooLarge', 400)
  const mapped = toStorageError(tooLarge)
  t.ok(mapped instanceof StorageFullError, 'EntityTooLarge')
  t.equal((mapped as StorageFullError).cause, tooLarge)
  t.ok(toStorageError(s3Error('UnknownError', 507)) instanceof StorageFullError, 'HTTP 507')
  const denied = s3Error('AccessDenied', 403)
  t.equal(toStorageError(denied), denied, 'other errors pass through')
})
