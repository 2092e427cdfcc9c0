import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { createFileService, type FileService } from '../src/files/file-service.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Files as the service sees them: the blob store and the metadata store kept consistent. */
    files: FileService
  }
}

export interface FilesPluginOptions {
  /** Milliseconds since the epoch (tests control expiry with it). */
  now: () => number
}

async function filesPlugin (app: FastifyInstance, options: FilesPluginOptions): Promise<void> {
  app.decorate('files', createFileService({ blobStore: app.blobStore, fileStore: app.fileStore, now: options.now, log: app.log }))
}

export default fp(filesPlugin, { name: 'files', fastify: '5.x', dependencies: ['storage', 'metadata'] })
