import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/**
 * Downloads carry other people's bytes: browsers must neither sniff them into HTML nor
 * frame any of our answers. Set on every response, errors included.
 */
async function securityHeadersPlugin (app: FastifyInstance): Promise<void> {
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff')
    reply.header('x-frame-options', 'DENY')
    reply.header('referrer-policy', 'no-referrer')
    return payload
  })
}

export default fp(securityHeadersPlugin, { name: 'security-headers', fastify: '5.x' })
