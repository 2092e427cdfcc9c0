import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { CheckPool, checkPoolSize } from '../src/upload/check-pool.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Worker threads that validate and hash uploads; null: uploads are checked on the event loop. */
    checkPool: CheckPool | null
  }
}

export interface CheckPoolPluginOptions {
  /** UPLOAD_WORKER_THREADS: 0 checks on the event loop; unset, one worker per core. */
  threads: number | undefined
  /** A ready pool (tests); the app then leaves closing it to the caller. */
  pool?: CheckPool
}

async function checkPoolPlugin (app: FastifyInstance, options: CheckPoolPluginOptions): Promise<void> {
  const size = checkPoolSize(options.threads)
  const pool = options.pool ?? (size === 0
    ? null
    : new CheckPool({
      size,
      onWorkerExit: (err) => { app.log.error({ err }, 'an upload check worker stopped; its uploads failed and a new worker replaces it') }
    }))
  // Started before the app listens: booting threads is a burst of CPU that would
  // otherwise land on the first uploads (and slow a 2-core machine's event loop then).
  if (options.pool === undefined && pool !== null) await pool.sessions()
  app.decorate('checkPool', pool)
  if (options.pool === undefined && pool !== null) app.addHook('onClose', async () => { await pool.close() })
}

export default fp(checkPoolPlugin, { name: 'check-pool', fastify: '5.x' })
