import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { createUploadService, type UploadService, type UploadServiceDeps } from '../src/uploads/upload-service.js'
import { createUploadStore } from '../src/uploads/upload-store.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** OpenAI's Uploads API: uploads and their parts, kept consistent with storage. */
    uploads: UploadService
  }
}

export interface UploadsPluginOptions {
  limits: UploadServiceDeps['limits']
  storagePrefix: string
  maxDurationMs: number
  /** Milliseconds since the epoch (tests control expiry with it). */
  now: () => number
}

async function uploadsPlugin (app: FastifyInstance, options: UploadsPluginOptions): Promise<void> {
  app.decorate('uploads', createUploadService({
    store: createUploadStore(app.fileStore.uploadDb, app.fileStore.dialect),
    blobStore: app.blobStore,
    files: app.files,
    limits: options.limits,
    storagePrefix: options.storagePrefix,
    maxDurationMs: options.maxDurationMs,
    now: options.now,
    log: app.log
  }))
}

export default fp(uploadsPlugin, { name: 'uploads', fastify: '5.x', dependencies: ['storage', 'metadata', 'files'] })
