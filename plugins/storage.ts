import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { BlobStore } from '../src/storage/blob-store.js'

declare module 'fastify' {
  interface FastifyInstance {
    blobStore: BlobStore
  }
}

export interface StoragePluginOptions {
  /** A ready driver (tests hand in one pointed at a temporary place). */
  store?: BlobStore
  /** Builds the driver when none is handed in; the plugin then owns and closes it. */
  create?: () => Promise<BlobStore>
}

async function storagePlugin (app: FastifyInstance, options: StoragePluginOptions): Promise<void> {
  const owned = options.store === undefined
  const store = options.store ?? await options.create?.()
  if (store === undefined) throw new Error('storage plugin needs a store or a create function')
  app.decorate('blobStore', store)
  if (owned) app.addHook('onClose', async () => { await store.close() })
}

export default fp(storagePlugin, { name: 'storage', fastify: '5.x' })
