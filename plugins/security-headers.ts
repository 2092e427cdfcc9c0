import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/** Exported for the answers that bypass hooks (plugins/errors.ts frameworkErrorHandler). */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer'
}

/**
 * Downloads carry other people's bytes: browsers must neither sniff them into HTML nor
 * frame any of our answers. Set on every response, errors included.
 */
async function securityHeadersPlugin (app: FastifyInstance): Promise<void> {
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.headers(SECURITY_HEADERS)
    return payload
  })
}

export default fp(securityHeadersPlugin, { name: 'security-headers', fastify: '5.x' })
