import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'

/**
 * Matches `application/<anything>+json` (RFC 6839 structured syntax suffix), with or
 * without parameters; Fastify tests it against the normalized `type/subtype; params`.
 */
const JSON_SUFFIX = /^application\/[^\s;/]+\+json(?:$|;)/

type CallbackParser = (request: FastifyRequest, body: string, done: (error: Error | null, body?: unknown) => void) => void

/**
 * JSON bodies, and empty ones under a JSON content type. The official Python SDK sends
 * `Content-Type: application/json` with no body on DELETE (issue 9), which Fastify's own
 * parser refuses with 400 "Body cannot be empty". No route here takes a JSON body, so an
 * empty one is simply no body; a non-empty one still goes through Fastify's parser, with
 * its prototype-poisoning guards. Registered at the root, so it holds for every route of
 * both families (the upload route adds multipart in its own scope).
 */
async function jsonBodyPlugin (app: FastifyInstance): Promise<void> {
  // Typed as a union of the callback and the promise forms; Fastify's default is the
  // callback one (lib/content-type-parser.js defaultJsonParser).
  const parseJson = app.getDefaultJsonParser('error', 'error') as CallbackParser
  const parser: CallbackParser = (request, body, done) => {
    if (body.length === 0) {
      done(null, undefined)
      return
    }
    parseJson(request, body, done)
  }
  // Replacing Fastify's default application/json parser is allowed without removing it first.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, parser)
  app.addContentTypeParser(JSON_SUFFIX, { parseAs: 'string' }, parser)
}

export default fp(jsonBodyPlugin, { name: 'json-body', fastify: '5.x' })
