import { performance } from 'node:perf_hooks'
import underPressure, { TYPE_EVENT_LOOP_DELAY } from '@fastify/under-pressure'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ERRORS } from '../src/errors.js'

export interface OverloadPluginOptions {
  /** 0 turns a threshold off. */
  maxEventLoopDelayMs: number
  maxHeapUsedBytes: number
  maxRssBytes: number
  retryAfterSeconds: number
  /** Route patterns that always answer: probes and scrapes must see the truth under load. */
  exemptRoutes: readonly string[]
}

/** How often @fastify/under-pressure samples (its default, set here because the grace depends on it). */
const SAMPLE_INTERVAL_MS = 1000
/**
 * The event loop delay is measured from registration on, so the first samples after start-up
 * hold the time the rest of buildApp blocked the loop (schema compilation, migrations, a
 * loaded machine compiling modules). A sample window that began before ready closes at most
 * one interval after it and its value stands for one more: two intervals of grace. Without
 * it a replica that had just passed /health refused its first upload (CI, kill-two-replicas).
 */
const STARTUP_GRACE_MS = 2 * SAMPLE_INTERVAL_MS

/**
 * Sheds load with 503 + Retry-After when the process is past a threshold (sampled about
 * once a second by @fastify/under-pressure), before any work is done for the request.
 * The refusal goes through the one error handler, so it has the family's error shape.
 */
async function overloadPlugin (app: FastifyInstance, options: OverloadPluginOptions): Promise<void> {
  const exempt = new Set(options.exemptRoutes)
  let readyAt = Number.POSITIVE_INFINITY
  app.addHook('onReady', async () => { readyAt = performance.now() })
  const startingUp = (): boolean => performance.now() < readyAt + STARTUP_GRACE_MS
  await app.register(underPressure, {
    maxEventLoopDelay: options.maxEventLoopDelayMs,
    maxHeapUsedBytes: options.maxHeapUsedBytes,
    maxRssBytes: options.maxRssBytes,
    retryAfter: options.retryAfterSeconds,
    sampleInterval: SAMPLE_INTERVAL_MS,
    pressureHandler: async (request: FastifyRequest, reply, type, value) => {
      if (request.routeOptions.url !== undefined && exempt.has(request.routeOptions.url)) return
      // Memory past a bound is real whenever it is seen; a start-up delay is not overload.
      if (type === TYPE_EVENT_LOOP_DELAY && startingUp()) return
      request.log.warn({ pressure: type, value }, 'overloaded: request refused')
      reply.header('retry-after', String(options.retryAfterSeconds))
      throw ERRORS.overloaded(options.retryAfterSeconds)
    }
  })
}

export default fp(overloadPlugin, { name: 'overload', fastify: '5.x' })
