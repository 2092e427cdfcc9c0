import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { ERRORS } from '../src/errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Aborts, with ERRORS.shuttingDown() as its reason, when the app has been closing for
     * `timeoutMs`: uploads still running then are abandoned (nothing stored) and answered 503.
     */
    shutdownSignal: AbortSignal
  }
}

export interface GracefulShutdownPluginOptions {
  /** How long in-flight requests may still run once `close()` was called. */
  timeoutMs: number
}

/**
 * `app.close()` stops accepting connections and then waits for every in-flight request;
 * a slow or stalled upload would hold the process until the orchestrator kills it, with
 * a temp file or an unfinished multipart upload left behind. This bounds the wait.
 */
async function gracefulShutdownPlugin (app: FastifyInstance, options: GracefulShutdownPluginOptions): Promise<void> {
  const controller = new AbortController()
  let timer: NodeJS.Timeout | undefined
  app.decorate('shutdownSignal', controller.signal)
  app.addHook('preClose', async () => {
    timer = setTimeout(() => {
      app.log.warn({ timeoutMs: options.timeoutMs }, 'shutdown timeout reached: abandoning the uploads still running')
      controller.abort(ERRORS.shuttingDown())
    }, options.timeoutMs)
  })
  app.addHook('onClose', async () => { clearTimeout(timer) })
}

export default fp(gracefulShutdownPlugin, { name: 'graceful-shutdown', fastify: '5.x' })
