import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { ERRORS } from '../src/errors.js'

export interface RateLimitPluginOptions {
  /** Requests per key and window; 0 turns rate limiting off. */
  max: number
  windowMs: number
}

/**
 * Per-key request rate limits, counted in this process (each replica counts its own).
 * Keyed by the authenticated project and key digest, never by IP: callers behind one
 * gateway share an address. The limiter runs in preParsing, after the routes' onRequest
 * authentication, so a flood without a valid key is refused with 401 and consumes no
 * project's budget; unauthenticated routes (health, readiness, metrics, docs) are not limited.
 */
async function rateLimitPlugin (app: FastifyInstance, options: RateLimitPluginOptions): Promise<void> {
  if (options.max <= 0) return
  await app.register(rateLimit, {
    max: options.max,
    timeWindow: options.windowMs,
    hook: 'preParsing',
    keyGenerator: (request) => `${request.project}\n${request.keyId}`,
    allowList: (request) => request.project === '',
    // Thrown into the one error handler: the family's error shape; retry-after is set by the limiter.
    errorResponseBuilder: (_request, context) => ERRORS.rateLimited(context.max, options.windowMs, Math.max(1, Math.ceil(context.ttl / 1000)))
  })
}

export default fp(rateLimitPlugin, { name: 'rate-limit', fastify: '5.x', dependencies: ['auth'] })
