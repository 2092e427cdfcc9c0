import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { FileStore } from '../src/metadata/file-store.js'

declare module 'fastify' {
  interface FastifyInstance {
    fileStore: FileStore
  }
}

export interface MetadataPluginOptions {
  /** A ready store (tests hand in one on a temporary database). */
  store?: FileStore
  /** Builds the store when none is handed in; the plugin then owns and closes it. */
  create?: () => Promise<FileStore>
}

async function metadataPlugin (app: FastifyInstance, options: MetadataPluginOptions): Promise<void> {
  const owned = options.store === undefined
  const store = options.store ?? await options.create?.()
  if (store === undefined) throw new Error('metadata plugin needs a store or a create function')
  // Migrations run at start-up, before any route can touch the tables.
  await store.migrate()
  app.decorate('fileStore', store)
  if (owned) app.addHook('onClose', async () => { await store.close() })
}

export default fp(metadataPlugin, { name: 'metadata', fastify: '5.x' })
