import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { ApiKeyTable } from '../src/api-keys.js'
import { ERRORS } from '../src/errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook for routes that need a caller: sets `request.project` or throws 401. */
    authenticate: (request: FastifyRequest) => Promise<void>
  }
  interface FastifyRequest {
    /** The project of the caller's key; files are scoped to it. */
    project: string
  }
}

export interface AuthPluginOptions {
  keys: ApiKeyTable
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i

async function authPlugin (app: FastifyInstance, options: AuthPluginOptions): Promise<void> {
  const { keys } = options
  app.decorateRequest('project', '')
  app.decorate('authenticate', async (request: FastifyRequest) => {
    const header = request.headers.authorization
    if (header === undefined || header === '') throw ERRORS.missingApiKey()
    const key = BEARER.exec(header)?.[1]
    const project = key === undefined ? undefined : keys.projectOf(key)
    if (project === undefined) throw ERRORS.invalidApiKey()
    request.project = project
  })
}

export default fp(authPlugin, { name: 'auth', fastify: '5.x' })
