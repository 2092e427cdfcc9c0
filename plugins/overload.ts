import underPressure from '@fastify/under-pressure'
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

/**
 * Sheds load with 503 + Retry-After when the process is past a threshold (sampled about
 * once a second by @fastify/under-pressure), before any work is done for the request.
 * The refusal goes through the one error handler, so it has the family's error shape.
 */
async function overloadPlugin (app: FastifyInstance, options: OverloadPluginOptions): Promise<void> {
  const exempt = new Set(options.exemptRoutes)
  await app.register(underPressure, {
    maxEventLoopDelay: options.maxEventLoopDelayMs,
    maxHeapUsedBytes: options.maxHeapUsedBytes,
    maxRssBytes: options.maxRssBytes,
    retryAfter: options.retryAfterSeconds,
    pressureHandler: async (request: FastifyRequest, reply, type, value) => {
      if (request.routeOptions.url !== undefined && exempt.has(request.routeOptions.url)) return
      request.log.warn({ pressure: type, value }, 'overloaded: request refused')
      reply.header('retry-after', String(options.retryAfterSeconds))
      throw ERRORS.overloaded(options.retryAfterSeconds)
    }
  })
}

export default fp(overloadPlugin, { name: 'overload', fastify: '5.x' })
