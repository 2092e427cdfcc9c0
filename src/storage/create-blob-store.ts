import path from 'node:path'
import type { BlobStore } from './blob-store.js'
import { createFsBlobStore } from './fs-blob-store.js'
import { createS3BlobStore } from './s3-blob-store.js'

export interface BlobStoreConfig {
  driver: 'fs' | 's3'
  dataDir: string
  s3: {
    endpoint?: string
    region?: string
    bucket?: string
    accessKeyId?: string
    secretAccessKey?: string
    forcePathStyle?: boolean
    partSizeBytes?: number
    connectTimeoutMs?: number
    requestTimeoutMs?: number
  }
}

export async function createBlobStore (config: BlobStoreConfig): Promise<BlobStore> {
  if (config.driver === 'fs') {
    return await createFsBlobStore({ root: path.join(config.dataDir, 'blobs') })
  }
  const { bucket, ...s3 } = config.s3
  if (bucket === undefined || bucket === '') {
    throw new Error('the s3 storage driver needs a bucket name (S3 bucket is not configured)')
  }
  return createS3BlobStore({ ...s3, bucket })
}
