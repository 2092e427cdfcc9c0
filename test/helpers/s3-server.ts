import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  S3Client
} from '@aws-sdk/client-s3'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import path from 'node:path'

export interface S3TestServer {
  endpoint: string
  region: string
  bucket: string
  accessKeyId: string
  secretAccessKey: string
  kind: 's3rver' | 'external'
  /** What this server can prove; tests skip, with the reason, what it cannot. */
  supports: {
    abortMultipart: boolean
    listMultipartUploads: boolean
    signatures: boolean
  }
  close: () => Promise<void>
}

/** The part of a tap Test this helper needs. */
export interface TeardownHost {
  teardown: (fn: () => unknown) => void
}

/**
 * An S3 endpoint with a fresh bucket. `S3_TEST_ENDPOINT` (with `S3_TEST_ACCESS_KEY_ID`,
 * `S3_TEST_SECRET_ACCESS_KEY`, optional `S3_TEST_REGION`) points at a real server;
 * otherwise s3rver runs in a child process, so a crash or hang of it cannot take the
 * test process along, and the child exits by itself when its stdin closes.
 */
export async function startS3Server (t: TeardownHost): Promise<S3TestServer> {
  const external = process.env.S3_TEST_ENDPOINT
  const server = external !== undefined && external !== ''
    ? await useExternal(external)
    : await startS3rver()
  t.teardown(server.close)
  return server
}

/** The service's settings for this server: STORAGE_DRIVER=s3 and every S3_* variable. */
export function serviceEnv (s3: S3TestServer, endpoint = s3.endpoint): Record<string, string> {
  return {
    STORAGE_DRIVER: 's3',
    S3_ENDPOINT: endpoint,
    S3_REGION: s3.region,
    S3_BUCKET: s3.bucket,
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey
  }
}

/**
 * A client for looking at the bucket directly, configured like the driver's (no
 * trailing checksums: see src/storage/s3-support.ts). Destroyed in teardown when given one.
 */
export function bucketClient (s3: Pick<S3TestServer, 'endpoint' | 'region' | 'accessKeyId' | 'secretAccessKey'>, t?: TeardownHost): S3Client {
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED'
  })
  t?.teardown(() => { client.destroy() })
  return client
}

async function useExternal (endpoint: string): Promise<S3TestServer> {
  const accessKeyId = requiredEnv('S3_TEST_ACCESS_KEY_ID')
  const secretAccessKey = requiredEnv('S3_TEST_SECRET_ACCESS_KEY')
  const region = process.env.S3_TEST_REGION ?? 'us-east-1'
  const bucket = `files-api-test-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`
  const client = bucketClient({ endpoint, region, accessKeyId, secretAccessKey })
  await client.send(new CreateBucketCommand({ Bucket: bucket }))
  return {
    endpoint,
    region,
    bucket,
    accessKeyId,
    secretAccessKey,
    kind: 'external',
    supports: { abortMultipart: true, listMultipartUploads: true, signatures: true },
    close: async () => {
      try {
        await emptyBucket(client, bucket)
        await client.send(new DeleteBucketCommand({ Bucket: bucket }))
      } finally {
        client.destroy()
      }
    }
  }
}

async function emptyBucket (client: S3Client, bucket: string): Promise<void> {
  let token: string | undefined
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }))
    for (const item of page.Contents ?? []) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: item.Key }))
    }
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined
  } while (token !== undefined)
}

// s3rver is CommonJS and old: its paged listings need the legacy OpenSSL provider.
const CHILD_SCRIPT = `
const S3rver = require(process.env.S3RVER_MODULE)
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory: process.env.S3RVER_DIR,
  configureBuckets: [{ name: process.env.S3RVER_BUCKET }]
})
server.run().then(
  (address) => { process.stdout.write(JSON.stringify({ port: address.port }) + '\\n') },
  (err) => { console.error(err); process.exit(1) }
)
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
`

async function startS3rver (): Promise<S3TestServer> {
  const directory = await mkdtemp(path.join(tmpdir(), 'files-api-s3rver-'))
  const bucket = 'files-api-test'
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '--input-type=commonjs', '-e', CHILD_SCRIPT], {
    env: {
      ...process.env,
      S3RVER_MODULE: createRequire(import.meta.url).resolve('s3rver'),
      S3RVER_DIR: directory,
      S3RVER_BUCKET: bucket
    },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  let port: number
  try {
    port = await readPort(child)
  } catch (err) {
    await stopChild(child)
    await rm(directory, { recursive: true, force: true })
    throw err
  }
  return {
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    bucket,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    kind: 's3rver',
    // s3rver answers AbortMultipartUpload and ListMultipartUploads with MethodNotAllowed /
    // NotImplemented, and accepts any SigV4 signature for a known access key id.
    supports: { abortMultipart: false, listMultipartUploads: false, signatures: false },
    close: async () => {
      await stopChild(child)
      await rm(directory, { recursive: true, force: true })
    }
  }
}

async function readPort (child: ChildProcess): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    let out = ''
    let err = ''
    const timer = setTimeout(() => { fail(new Error(`s3rver did not start in 10 s: ${err}`)) }, 10_000)
    function fail (error: Error): void {
      clearTimeout(timer)
      reject(error)
    }
    child.stderr?.on('data', (chunk: Buffer) => { err += chunk.toString() })
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const line = out.split('\n')[0]
      if (!out.includes('\n') || line === undefined) return
      clearTimeout(timer)
      const parsed: unknown = JSON.parse(line)
      if (typeof parsed === 'object' && parsed !== null && 'port' in parsed && typeof parsed.port === 'number') {
        resolve(parsed.port)
      } else {
        reject(new Error(`s3rver printed no port: ${line}`))
      }
    })
    child.once('exit', (code) => { fail(new Error(`s3rver exited with ${code}: ${err}`)) })
  })
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  child.stdin?.end()
  child.kill('SIGTERM')
  const timer = setTimeout(() => { child.kill('SIGKILL') }, 5_000)
  await exited
  clearTimeout(timer)
}

function requiredEnv (name: string): string {
  const value = process.env[name]
  if (value === undefined || value === '') {
    throw new Error(`${name} must be set when S3_TEST_ENDPOINT is`)
  }
  return value
}
