import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { BatchRecord } from '../src/batches/batch-store.js'
import { createBatchService, type BatchService } from '../src/batches/batch-service.js'
import type { UpstreamMap } from '../src/batches/upstream-url.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The Batches API: create, retrieve, list and cancel, scoped to the project. */
    batches: BatchService
  }
}

export interface BatchesPluginOptions {
  /** Null when no upstream is configured (creating a batch is refused, naming the settings). */
  upstreams: UpstreamMap | null
  allowedUrls: readonly string[]
  /** BATCH_MAX_LINE_BYTES. */
  maxLineBytes: number
  /** Told of every batch created (the batch worker wakes on it). */
  onCreated?: (batch: BatchRecord) => void
}

async function batchesPlugin (app: FastifyInstance, options: BatchesPluginOptions): Promise<void> {
  app.decorate('batches', createBatchService({
    db: app.fileStore.batchDb,
    dialect: app.fileStore.dialect,
    files: app.files,
    blobStore: app.blobStore,
    upstreams: options.upstreams,
    allowedUrls: options.allowedUrls,
    maxLineBytes: options.maxLineBytes,
    ...(options.onCreated === undefined ? {} : { onCreated: options.onCreated }),
    log: app.log
  }))
}

export default fp(batchesPlugin, { name: 'batches', fastify: '5.x', dependencies: ['storage', 'metadata', 'files'] })
