import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ApiError, ERRORS } from '../src/errors.js'
import { REQUEST_ID_HEADER } from './request-id.js'
import { SECURITY_HEADERS } from './security-headers.js'

/** `/api/v1` answers in the `{success, code, message, data}` envelope; everything else bare. */
export function usesEnvelope (url: string): boolean {
  return url === '/api/v1' || url.startsWith('/api/v1/') || url.startsWith('/api/v1?')
}

const GENERIC_CODES: Record<number, string> = {
  400: 'invalid_request',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  413: 'request_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  429: 'rate_limit_exceeded',
  431: 'request_header_fields_too_large'
}

/** Turns whatever was thrown into the one error type; internals of 5xx stay in the log. */
export function toApiError (error: FastifyError | ApiError | Error): ApiError {
  if (error instanceof ApiError) return error
  const fastifyError = error as FastifyError
  if (fastifyError.validation !== undefined) {
    const first = fastifyError.validation[0]
    const field = first?.instancePath.replace(/^\//, '').replaceAll('/', '.') ?? ''
    // ajv 8 names a missing property in `missingProperty` (`required`); the parameter at
    // fault is that property of the object at instancePath (`output_expires_after.seconds`).
    const params = first?.params as { missingProperty?: string, requiredProperties?: string[] } | undefined
    const missing = params?.missingProperty ?? params?.requiredProperties?.[0]
    const path = [field, missing ?? ''].filter((part) => part !== '').join('.')
    const param = path !== '' ? path : null
    const where = fastifyError.validationContext ?? 'request'
    // A `propertyNames` error is about a key of the object (metadata keys), not its value.
    const about = (first as { propertyName?: string } | undefined)?.propertyName === undefined ? '' : 'a key '
    return ERRORS.invalidParameter(param, `Invalid ${where}${param === null ? '' : ` parameter '${param}'`}: ${about}${first?.message ?? fastifyError.message}`)
  }
  if (fastifyError.code === 'FST_INVALID_MULTIPART_CONTENT_TYPE' || fastifyError.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return ERRORS.unsupportedMediaType(undefined)
  }
  const status = fastifyError.statusCode
  if (status !== undefined && status >= 400 && status < 500) {
    return new ApiError(status, 'invalid_request_error', GENERIC_CODES[status] ?? 'invalid_request', null, fastifyError.message)
  }
  return ERRORS.internal(error)
}

export function sendApiError (request: FastifyRequest, reply: FastifyReply, error: ApiError): FastifyReply {
  // A request refused before its body was read (auth, limits, a bad line) must not
  // leave the socket parked on an unread upload: ask the client to close it. The rest of
  // the body is drained before the close (plugins/lingering-close.ts).
  if (!request.raw.complete) reply.header('connection', 'close')
  const body = error.toErrorObject()
  reply.code(error.statusCode)
  if (usesEnvelope(request.url)) {
    return reply.send({ success: false, code: String(error.statusCode), message: body.message, data: { error: body } })
  }
  return reply.send({ error: body })
}

/**
 * Fastify's `frameworkErrors`: the router refuses some requests before any route, hook
 * or error handler runs (a bad percent-encoding, a path parameter past maxParamLength)
 * and would answer them in its own shape, without our headers. These answer in the
 * family's shape like every other error.
 */
export function frameworkErrorHandler (maxParamLength: number) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    // No hook runs for these answers: the request id and the security headers are set here.
    reply.header(REQUEST_ID_HEADER, request.id).headers(SECURITY_HEADERS)
    const apiError = error.code === 'FST_ERR_BAD_URL'
      ? ERRORS.malformedUrl()
      : error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? ERRORS.pathTooLong(maxParamLength) : toApiError(error)
    request.log.info({ code: apiError.code, status: apiError.statusCode }, apiError.message)
    sendApiError(request, reply, apiError)
  }
}

async function errorsPlugin (app: FastifyInstance): Promise<void> {
  app.setErrorHandler((error: FastifyError | ApiError, request, reply) => {
    const apiError = toApiError(error)
    if (apiError.statusCode >= 500) {
      request.log.error({ err: error }, 'request failed')
    } else {
      request.log.info({ code: apiError.code, status: apiError.statusCode }, apiError.message)
    }
    return sendApiError(request, reply, apiError)
  })
  app.setNotFoundHandler((request, reply) => {
    return sendApiError(request, reply, ERRORS.routeNotFound(request.method, request.url))
  })
}

export default fp(errorsPlugin, { name: 'errors', fastify: '5.x' })
