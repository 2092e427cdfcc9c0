import multipart from '@fastify/multipart'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { FileObjectSchema, UploadBodySchema } from '../../schemas/files.js'
import { ApiError, ERRORS } from '../errors.js'
import { refusedUploadOutcome } from '../upload/outcome.js'
import type { QuotaGuard } from '../upload/quota.js'
import { MAX_FIELD_NAME_BYTES, type UploadPart } from '../upload/form-fields.js'
import { uploadFile, type UploadDeps } from '../upload/upload-file.js'
import type { UploadSlots } from '../upload/upload-slots.js'
import { toFileObject, type RouteFamily } from './family.js'
import { abortOnShutdownOrDeadline, acquireUploadSlot } from './upload-guard.js'

export interface UploadRouteOptions {
  family: RouteFamily
  upload: Omit<UploadDeps, 'blobStore' | 'files'>
  quota: QuotaGuard
  slots: UploadSlots
  busyRetryAfterSeconds: number
}

const MULTIPART_FIELDS = 10
const FIELD_BYTES = 64 * 1024
/**
 * What a multipart body may hold besides the file: the fields (10 of 64 KiB) and the part
 * headers (busboy reads at most 16 KiB of them per part), rounded up. A Content-Length past
 * the largest file plus this cannot carry an acceptable file, and is refused unread.
 */
const MULTIPART_ALLOWANCE_BYTES = 1024 * 1024

/** `POST /files`: hands the multipart stream to the upload pipeline. */
export default async function uploadRoute (fastify: FastifyInstance, options: UploadRouteOptions): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const { family, quota, slots } = options
  const { limits } = options.upload
  const largestFile = Math.max(limits.maxFileBytes, limits.batchMaxFileBytes)

  // Encapsulated here: only the upload route parses multipart, with explicit limits.
  // throwFileSizeLimit is off because the pipeline enforces the size itself, per purpose,
  // and treats truncation as an error instead of storing a cut file.
  await app.register(multipart, {
    throwFileSizeLimit: false,
    limits: {
      files: 1,
      fileSize: largestFile + 1,
      fields: MULTIPART_FIELDS,
      parts: MULTIPART_FIELDS + 1,
      fieldNameSize: MAX_FIELD_NAME_BYTES,
      fieldSize: FIELD_BYTES,
      headerPairs: 100
    }
  })

  app.post('/files', {
    schema: {
      operationId: family.operationId('createFile'),
      summary: 'Upload a file',
      description: 'Streams a multipart upload into storage. Files with purpose `batch` are validated line by line; an invalid one is refused with every faulty line named and nothing is stored. Fields may come in any order.',
      tags: family.tags,
      consumes: ['multipart/form-data'],
      response: {
        200: family.ok(FileObjectSchema, 'The stored file.'),
        400: family.error, 401: family.error, 403: family.error, 408: family.error, 413: family.error, 415: family.error, 429: family.error, 503: family.error, 504: family.error, 507: family.error
      }
    },
    config: {
      // A schema.body would make Fastify validate a streamed multipart body (and fail);
      // the body is documented for OpenAPI only.
      swaggerTransform: ({ schema, url }) => ({ schema: { ...schema, body: UploadBodySchema }, url })
    }
  }, async (request, reply) => {
    const abort = abortOnShutdownOrDeadline(app.shutdownSignal, options.upload.maxDurationMs)
    let release: (() => void) | null = null
    try {
      if (!request.isMultipart()) throw ERRORS.unsupportedMediaType(request.headers['content-type'])
      const declared = Number(request.headers['content-length'])
      if (declared > largestFile + MULTIPART_ALLOWANCE_BYTES) throw ERRORS.uploadTooLarge(declared, largestFile)
      // Before a byte of the body is read: the uploads in flight are what memory is sized for.
      release = acquireUploadSlot(slots, reply, options.busyRetryAfterSeconds)
      // A project already at its quota is refused before a byte of the body is read.
      await quota.admit(request.project)
      const record = await uploadFile(request.parts() as AsyncIterable<UploadPart>, {
        project: request.project,
        signal: abort.signal,
        ...(Number.isSafeInteger(declared) ? { declaredBytes: declared } : {})
      }, {
        ...options.upload,
        blobStore: app.blobStore,
        files: app.files,
        ...(quota.enabled ? { beforeCommit: async (file) => quota.fits(file.project, file.bytes) } : {})
      })
      app.metrics.recordUpload({ outcome: 'stored', purpose: record.purpose, bytes: record.bytes })
      request.log.info({ fileId: record.id, bytes: record.bytes, purpose: record.purpose, project: record.project }, 'file stored')
      return family.reply(toFileObject(record))
    } catch (error) {
      // The client gone mid-body (its request destroyed unfinished) or the server giving up.
      const aborted = abort.signal.aborted || (request.raw.destroyed && !request.raw.complete)
      const outcome = refusedUploadOutcome(error, aborted)
      app.metrics.recordUpload(error instanceof ApiError && error.lineErrors !== undefined && outcome === 'invalid'
        ? { outcome, lineErrors: error.lineErrors }
        : { outcome })
      throw error
    } finally {
      release?.()
      abort.dispose()
    }
  })
}
