import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import type { Test } from 'tap'
import { DEPLOYMENT_MARKER, startServer, type TestServer } from '../../helpers/app.js'
import { bucketClient, serviceEnv, type S3TestServer } from '../../helpers/s3-server.js'

/** Bytes per multipart part in these tests: the S3 minimum, so a 12 MiB upload has three. */
export const PART_BYTES = 5 * 1024 * 1024

/**
 * The service on STORAGE_DRIVER=s3 talking to `endpoint` (the fault proxy, or a black
 * hole), configured through its environment only. Reconciliation runs only when the test
 * calls `app.reconcile()`, with no grace: everything unfinished is then fair game.
 */
export async function startS3Service (t: Test, s3: S3TestServer, endpoint: string, env: Record<string, string> = {}): Promise<TestServer> {
  return await startServer(t, {
    ...serviceEnv(s3, endpoint),
    S3_PART_SIZE_BYTES: String(PART_BYTES),
    RECONCILE_INTERVAL_MS: '0',
    RECONCILE_GRACE_MS: '0',
    ...env
  })
}

export interface BucketView {
  /** Every object as `key:size`, sorted, without the deployment marker. */
  objects: () => Promise<string[]>
  /** Unfinished multipart uploads as `key`, or null when the server cannot list them (s3rver). */
  unfinished: () => Promise<string[] | null>
}

/** Looks at the bucket directly, past the proxy: what is really stored. */
export function bucketView (t: Test, s3: S3TestServer): BucketView {
  const client = bucketClient(s3, t)
  return {
    objects: async () => ((await client.send(new ListObjectsV2Command({ Bucket: s3.bucket }))).Contents ?? [])
      .filter((o) => o.Key !== DEPLOYMENT_MARKER).map((o) => `${o.Key ?? ''}:${o.Size ?? 0}`).sort(),
    unfinished: async () => {
      if (!s3.supports.listMultipartUploads) return null
      return ((await client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket }))).Uploads ?? []).map((u) => u.Key ?? '').sort()
    }
  }
}

/** Every row of every project, expired or not: what the database holds. */
export async function allRows (server: TestServer): Promise<string[]> {
  return (await server.app.fileStore.scan(undefined, 1000)).map((row) => `${row.project}/${row.id}`)
}
