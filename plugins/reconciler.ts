import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { periodicJob } from '../src/jobs/periodic.js'
import { DeploymentMismatchError, ensureDeploymentIdentity } from '../src/reconcile/deployment.js'
import { reconcile, type ReconcileResult } from '../src/reconcile/reconcile.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Runs one reconciliation now (also what start-up and the timer run); null when another replica holds the lock. */
    reconcile: () => Promise<ReconcileResult | null>
    /** The last run's refusal, shown by /ready; null when it repaired or found nothing. */
    reconcileRefusal: () => ReconcileResult['refused']
  }
}

export interface ReconcilerPluginOptions {
  /** 0: neither at start-up nor periodically: nothing at all is repaired (the CLI and `app.reconcile()` still work). */
  intervalMs: number
  graceMs: number
  prefix: string
  maxRemovals: number
  now: () => number
  /** For messages naming the pair: the database without its password, the store. */
  database: string
  storage: string
}

/**
 * Checks the deployment identity before the app is ready (a mismatched database and store
 * stop start-up, whether or not reconciliation is on), then repairs orphan objects and
 * dangling rows at start-up (in the background, so a large bucket does not delay
 * readiness) and every interval, one replica at a time.
 */
async function reconcilerPlugin (app: FastifyInstance, options: ReconcilerPluginOptions): Promise<void> {
  const sides = { fileStore: app.fileStore, blobStore: app.blobStore, prefix: options.prefix, database: options.database, storage: options.storage }
  let verified = false
  try {
    await ensureDeploymentIdentity(sides)
    verified = true
  } catch (error) {
    // A mismatch stops start-up; an unreachable store or database does not (the replica
    // reports not ready instead), and the check runs again before any reconciliation.
    if (error instanceof DeploymentMismatchError) throw error
    app.log.warn({ err: error }, 'deployment identity not checked yet (storage or database unreachable); reconciliation waits for it')
  }
  let refused: ReconcileResult['refused'] = null
  const job = periodicJob('reconciliation', options.intervalMs, async () => {
    if (!verified) {
      await ensureDeploymentIdentity(sides)
      verified = true
    }
    const locked = await app.fileStore.withReconcileLock(async () => reconcile({
      fileStore: app.fileStore,
      blobStore: app.blobStore,
      now: options.now,
      graceMs: options.graceMs,
      prefix: options.prefix,
      maxRemovals: options.maxRemovals,
      log: app.log
    }))
    if (locked === null) {
      app.log.info('reconciliation skipped: another replica is running it')
      return null
    }
    refused = locked.value.refused
    app.metrics.recordReconciliation(refused?.reason ?? null)
    return locked.value
  }, app.log)
  app.decorate('reconcile', job.run)
  app.decorate('reconcileRefusal', () => refused)
  app.addHook('onReady', async () => {
    if (options.intervalMs <= 0) return
    job.run().catch((error: unknown) => app.log.error({ err: error }, 'reconciliation at start-up failed'))
    job.start()
  })
  app.addHook('onClose', job.stop)
}

export default fp(reconcilerPlugin, { name: 'reconciler', fastify: '5.x', dependencies: ['storage', 'metadata', 'metrics'] })
