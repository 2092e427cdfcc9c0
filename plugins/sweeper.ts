import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { sweepExpired, type SweepResult } from '../src/expiry/sweeper.js'
import { periodicJob } from '../src/jobs/periodic.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Runs one sweep now (also what the timer runs). */
    sweepExpired: () => Promise<SweepResult>
  }
}

export interface SweeperPluginOptions {
  /** 0 turns the timer off (the sweep can still be run by hand). */
  intervalMs: number
  batchSize: number
}

/** Deletes expired files and expires due uploads (removing their parts) in the background, on every replica; safe to overlap (see sweepExpired). */
async function sweeperPlugin (app: FastifyInstance, options: SweeperPluginOptions): Promise<void> {
  const job = periodicJob('expiry sweep', options.intervalMs, async () => sweepExpired({
    files: app.files,
    uploads: app.uploads,
    batchSize: options.batchSize,
    log: app.log
  }), app.log)
  app.decorate('sweepExpired', job.run)
  app.addHook('onReady', async () => { job.start() })
  app.addHook('onClose', job.stop)
}

export default fp(sweeperPlugin, { name: 'sweeper', fastify: '5.x', dependencies: ['files', 'uploads'] })
