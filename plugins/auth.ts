import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { PROJECT_NAME, type ApiKeyTable } from '../src/api-keys.js'
import { ERRORS } from '../src/errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook for routes that need a caller: sets `request.project` or throws 401. */
    authenticate: (request: FastifyRequest) => Promise<void>
  }
  interface FastifyRequest {
    /** The project of the caller's key; files are scoped to it. */
    project: string
    /**
     * Who within the project: a digest of the key (never the key), or `gateway` when the
     * trusted project header attributed the request. Rate limits count per project and keyId.
     */
    keyId: string
  }
}

export interface AuthPluginOptions {
  keys: ApiKeyTable
  /**
   * Gateway mode: a request carrying this header (lower case) belongs to the project it
   * names, without a key. Only safe when the service is reachable solely through a
   * gateway that authenticates callers and strips the header from their requests.
   */
  trustedProjectHeader?: string
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i
export const GATEWAY_KEY_ID = 'gateway'

async function authPlugin (app: FastifyInstance, options: AuthPluginOptions): Promise<void> {
  const { keys } = options
  const trusted = options.trustedProjectHeader?.toLowerCase()
  app.decorateRequest('project', '')
  app.decorateRequest('keyId', '')
  app.decorate('authenticate', async (request: FastifyRequest) => {
    if (trusted !== undefined) {
      const claimed = request.headers[trusted]
      if (claimed !== undefined) {
        // Node joins a repeated header into one string; two projects are never one name.
        if (typeof claimed !== 'string' || !PROJECT_NAME.test(claimed)) throw ERRORS.invalidProjectHeader(trusted)
        request.project = claimed
        request.keyId = GATEWAY_KEY_ID
        return
      }
    }
    const header = request.headers.authorization
    if (header === undefined || header === '') throw ERRORS.missingApiKey()
    const key = BEARER.exec(header)?.[1]
    const match = key === undefined ? undefined : keys.lookup(key)
    if (match === undefined) throw ERRORS.invalidApiKey()
    request.project = match.project
    request.keyId = match.keyId
  })
}

export default fp(authPlugin, { name: 'auth', fastify: '5.x' })
