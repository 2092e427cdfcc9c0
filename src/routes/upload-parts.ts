import multipart from '@fastify/multipart'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { addAbortSignal } from 'node:stream'
import { AddUploadPartBodySchema, UploadIdParamsSchema, UploadPartObjectSchema } from '../../schemas/uploads.js'
import { ApiError, ERRORS } from '../errors.js'
import { MAX_FIELD_NAME_BYTES } from '../upload/form-fields.js'
import type { UploadSlots } from '../upload/upload-slots.js'
import { MAX_PART_BYTES } from '../uploads/upload-service.js'
import type { RouteFamily } from './family.js'
import { abortOnShutdownOrDeadline, acquireUploadSlot } from './upload-guard.js'
import { toPartObject } from './upload-object.js'

export interface UploadPartsRouteOptions {
  family: RouteFamily
  slots: UploadSlots
  busyRetryAfterSeconds: number
  maxDurationMs: number | undefined
}

const MULTIPART_FIELDS = 4
/** Part headers and a few small fields around the data (as the upload route allows). */
const MULTIPART_ALLOWANCE_BYTES = 1024 * 1024

/** `POST /uploads/{upload_id}/parts`: one part, streamed into storage as it arrives. */
export default async function uploadPartsRoute (fastify: FastifyInstance, options: UploadPartsRouteOptions): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const { family } = options

  // Encapsulated here, with explicit limits. fileSize one past the part bound: a longer
  // part is cut by busboy, which the service sees (a byte over, or `truncated`) and refuses.
  await app.register(multipart, {
    throwFileSizeLimit: false,
    limits: {
      files: 1,
      fileSize: MAX_PART_BYTES + 1,
      fields: MULTIPART_FIELDS,
      parts: MULTIPART_FIELDS + 1,
      fieldNameSize: MAX_FIELD_NAME_BYTES,
      fieldSize: 1024,
      headerPairs: 100
    }
  })

  app.post('/uploads/:upload_id/parts', {
    schema: {
      operationId: family.operationId('addUploadPart'),
      summary: 'Add a part to an upload',
      description: 'One part of at most 64 MiB, in the multipart field `data`, stored as it arrives. Parts may be sent in any order and in parallel; their order is given at completion. A part re-sent is a new part (list the one you keep). Refused with 413 `part_too_large` (nothing kept), 400 `too_many_parts` past UPLOAD_MAX_PARTS, 400 `upload_not_pending` once the upload is completed, cancelled or expired.',
      tags: family.tags,
      consumes: ['multipart/form-data'],
      params: UploadIdParamsSchema,
      response: {
        200: family.ok(UploadPartObjectSchema, 'The part, stored.'),
        400: family.error, 401: family.error, 404: family.error, 408: family.error, 413: family.error, 415: family.error, 503: family.error, 504: family.error, 507: family.error
      }
    },
    config: {
      // As for POST /files: a schema.body would make Fastify validate the streamed body.
      swaggerTransform: ({ schema, url }) => ({ schema: { ...schema, body: AddUploadPartBodySchema }, url })
    }
  }, async (request, reply) => {
    const abort = abortOnShutdownOrDeadline(app.shutdownSignal, options.maxDurationMs)
    let release: (() => void) | null = null
    try {
      if (!request.isMultipart()) throw ERRORS.unsupportedMediaType(request.headers['content-type'])
      const declared = Number(request.headers['content-length'])
      if (declared > MAX_PART_BYTES + MULTIPART_ALLOWANCE_BYTES) throw ERRORS.partTooLarge(MAX_PART_BYTES)
      // Before a byte of the body is read: a missing or finished upload costs nothing more.
      await app.uploads.get(request.project, request.params.upload_id)
      release = acquireUploadSlot(options.slots, reply, options.busyRetryAfterSeconds)
      let data
      try {
        data = await request.file()
      } catch (error) {
        throw multipartError(error)
      }
      if (data === undefined) throw ERRORS.missingParameter('data', 'Missing the "data" part: send the bytes as a multipart file field "data".')
      if (data.fieldname !== 'data') throw ERRORS.invalidParameter(data.fieldname, `Unexpected file field "${data.fieldname.slice(0, MAX_FIELD_NAME_BYTES)}"; send the part in the field "data".`)
      addAbortSignal(abort.signal, data.file)
      const part = await app.uploads.addPart(request.project, request.params.upload_id, data.file, abort.signal)
      return family.reply(toPartObject(part))
    } catch (error) {
      // Whatever broke after an abort (shutdown, the deadline) is its consequence.
      if (abort.signal.aborted && abort.signal.reason instanceof ApiError) throw abort.signal.reason
      throw error
    } finally {
      release?.()
      abort.dispose()
    }
  })
}

function multipartError (error: unknown): ApiError {
  if (error instanceof ApiError) return error
  const code = (error as { code?: string }).code
  if (code === 'FST_INVALID_MULTIPART_CONTENT_TYPE') return ERRORS.unsupportedMediaType(undefined)
  if (code === 'FST_FILES_LIMIT' || code === 'FST_FIELDS_LIMIT' || code === 'FST_PARTS_LIMIT') {
    return ERRORS.invalidMultipart('Send one file field, "data", and nothing else.', error)
  }
  return ERRORS.invalidMultipart(`Malformed multipart/form-data body: ${error instanceof Error ? error.message : String(error)}.`, error)
}
