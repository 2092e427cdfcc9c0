import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { periodicJob } from '../src/jobs/periodic.js'
import { reconcile, type ReconcileResult } from '../src/reconcile/reconcile.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Runs one reconciliation now (also what start-up and the timer run). */
    reconcile: () => Promise<ReconcileResult>
  }
}

export interface ReconcilerPluginOptions {
  /** 0: neither at start-up nor periodically (the CLI and `app.reconcile()` still work). */
  intervalMs: number
  graceMs: number
  now: () => number
}

/**
 * Repairs orphan objects and dangling rows at start-up (in the background, so a large
 * bucket does not delay readiness) and then every interval.
 */
async function reconcilerPlugin (app: FastifyInstance, options: ReconcilerPluginOptions): Promise<void> {
  const job = periodicJob('reconciliation', options.intervalMs, async () => reconcile({
    fileStore: app.fileStore,
    blobStore: app.blobStore,
    now: options.now,
    graceMs: options.graceMs,
    log: app.log
  }), app.log)
  app.decorate('reconcile', job.run)
  app.addHook('onReady', async () => {
    if (options.intervalMs <= 0) return
    job.run().catch((error: unknown) => app.log.error({ err: error }, 'reconciliation at start-up failed'))
    job.start()
  })
  app.addHook('onClose', job.stop)
}

export default fp(reconcilerPlugin, { name: 'reconciler', fastify: '5.x', dependencies: ['storage', 'metadata'] })
