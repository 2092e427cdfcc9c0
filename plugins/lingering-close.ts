import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { continueWhenBodyRead, lingerBeforeClose, type LingerOptions } from '../src/http/lingering-close.js'

/**
 * Every answer reaches the client (issue 9, item 2): a refusal sent while the request's
 * body is unread closes the connection only after the rest of the body was drained (within
 * bounds), and `Expect: 100-continue` gets the refusal instead of a 100 when the request is
 * refused before its body is read. Works on the raw server, so every early answer (the error
 * handler's, the router's, a hook's) behaves the same; plugins/errors.ts marks those answers
 * `Connection: close`.
 */
async function lingeringClosePlugin (app: FastifyInstance, options: LingerOptions): Promise<void> {
  lingerBeforeClose(app.server, options)
  continueWhenBodyRead(app.server)
}

export default fp(lingeringClosePlugin, { name: 'lingering-close', fastify: '5.x' })
