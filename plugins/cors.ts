import cors from '@fastify/cors'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

export interface CorsPluginOptions {
  /** `CORS_ORIGINS`: comma-separated origins, or `*`. Unset: no CORS header is ever sent. */
  origins?: string
}

/** Headers a browser script may read: the request id to quote, download and retry metadata. */
const EXPOSED_HEADERS = [
  'x-request-id', 'content-disposition', 'content-range', 'etag', 'retry-after',
  'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'
]

export function parseCorsOrigins (text: string | undefined): string[] {
  return (text ?? '').split(',').map((origin) => origin.trim()).filter((origin) => origin !== '')
}

/**
 * Cross-origin access for browser clients, off unless CORS_ORIGINS lists origins: an API
 * that holds other people's files should not be readable from any page by default. Keys
 * travel in Authorization, never in cookies, so credentialed CORS is never needed; a
 * listed origin gets its own name echoed (with `Vary: Origin`), `*` gets `*`.
 */
async function corsPlugin (app: FastifyInstance, options: CorsPluginOptions): Promise<void> {
  const origins = parseCorsOrigins(options.origins)
  if (origins.length === 0) return
  await app.register(cors, {
    origin: origins.includes('*') ? '*' : origins,
    methods: ['GET', 'HEAD', 'POST', 'DELETE'],
    allowedHeaders: ['authorization', 'content-type', 'x-request-id', 'range', 'if-none-match', 'if-range'],
    exposedHeaders: EXPOSED_HEADERS,
    credentials: false,
    maxAge: 600
  })
}

export default fp(corsPlugin, { name: 'cors', fastify: '5.x' })
