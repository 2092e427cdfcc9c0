import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import Type from 'typebox'
import { ErrorResponseSchema } from '../../schemas/errors.js'
import { ERRORS } from '../errors.js'

export interface MetricsRouteOptions {
  /** When set, scrapes must send `Authorization: Bearer <token>`. */
  token?: string
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i

function digest (text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

/**
 * `GET /metrics`: the Prometheus exposition of this app's registry (plugins/metrics.ts).
 * Route patterns and counts are not secrets, but they describe traffic: the endpoint is
 * meant to be reached by the scraper only (network policy or gateway), with METRICS_TOKEN
 * as a second lock where that cannot be arranged.
 */
export default async function metricsRoutes (app: FastifyInstance, options: MetricsRouteOptions): Promise<void> {
  const expected = options.token === undefined ? undefined : digest(options.token)
  app.get('/metrics', {
    schema: {
      summary: 'Prometheus metrics',
      description: 'Request latency per route, upload outcomes and bytes, batch validation errors by code, storage errors, process metrics. Protected by METRICS_TOKEN when it is set.',
      tags: ['operations'],
      security: expected === undefined ? [] : [{ bearerAuth: [] }],
      response: {
        200: { description: 'Prometheus text exposition format 0.0.4.', content: { 'text/plain': { schema: Type.String() } } },
        401: ErrorResponseSchema
      }
    }
  }, async (request, reply) => {
    if (expected !== undefined) {
      const header = request.headers.authorization
      if (header === undefined || header === '') throw ERRORS.missingApiKey()
      const sent = BEARER.exec(header)?.[1]
      // Digests have one length, so the comparison takes the same time for every guess.
      if (sent === undefined || !timingSafeEqual(digest(sent), expected)) throw ERRORS.invalidApiKey()
    }
    const text = await app.metrics.registry.metrics()
    return reply.header('content-type', app.metrics.registry.contentType).send(text)
  })
}
