import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { sweepExpired, type SweepResult } from '../src/expiry/sweeper.js'

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
  now: () => number
}

/** Deletes expired files in the background, on every replica; safe to overlap. */
async function sweeperPlugin (app: FastifyInstance, options: SweeperPluginOptions): Promise<void> {
  let running: Promise<SweepResult> | undefined
  const sweep = async (): Promise<SweepResult> => {
    // One sweep at a time in this process; replicas are kept apart by the store.
    running ??= sweepExpired({
      fileStore: app.fileStore,
      blobStore: app.blobStore,
      now: options.now,
      batchSize: options.batchSize,
      log: app.log
    }).finally(() => { running = undefined })
    return running
  }
  app.decorate('sweepExpired', sweep)
  if (options.intervalMs <= 0) return
  let timer: NodeJS.Timeout | undefined
  app.addHook('onReady', async () => {
    timer = setInterval(() => {
      sweep().catch((error: unknown) => app.log.error({ err: error }, 'expiry sweep failed'))
    }, options.intervalMs)
    timer.unref()
  })
  app.addHook('onClose', async () => {
    clearInterval(timer)
    await running?.catch(() => {})
  })
}

export default fp(sweeperPlugin, { name: 'sweeper', fastify: '5.x', dependencies: ['storage', 'metadata'] })
