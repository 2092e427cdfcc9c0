import { randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

export const REQUEST_ID_HEADER = 'x-request-id'

/** Printable ASCII without spaces, as gateways generate them; anything else is not trusted into logs. */
const VALID_REQUEST_ID = /^[\x21-\x7e]{1,128}$/

/**
 * Fastify's `genReqId`: the gateway's `x-request-id` when it is a sane id, so log lines
 * correlate across hops; otherwise a fresh UUID. Fastify's own `requestIdHeader` would
 * take any value, however long or full of control characters.
 */
export function requestIdFor (request: { headers: IncomingHttpHeaders }): string {
  const incoming = request.headers[REQUEST_ID_HEADER]
  return typeof incoming === 'string' && VALID_REQUEST_ID.test(incoming) ? incoming : randomUUID()
}

/** Echoes the request id, so a caller can quote it when reporting a problem. Register first: set before any hook can fail. */
async function requestIdPlugin (app: FastifyInstance): Promise<void> {
  app.addHook('onRequest', async (request, reply) => {
    reply.header(REQUEST_ID_HEADER, request.id)
  })
}

export default fp(requestIdPlugin, { name: 'request-id', fastify: '5.x' })
