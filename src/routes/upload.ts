import multipart from '@fastify/multipart'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { FileObjectSchema, UploadBodySchema } from '../../schemas/files.js'
import { ApiError, ERRORS } from '../errors.js'
import { refusedUploadOutcome } from '../upload/outcome.js'
import type { QuotaGuard } from '../upload/quota.js'
import { MAX_FIELD_NAME_BYTES } from '../upload/form-fields.js'
import { uploadFile, type UploadDeps, type UploadPart } from '../upload/upload-file.js'
import { toFileObject, type RouteFamily } from './family.js'

export interface UploadRouteOptions {
  family: RouteFamily
  upload: Omit<UploadDeps, 'blobStore' | 'fileStore'>
  quota: QuotaGuard
}

const MULTIPART_FIELDS = 10

/** `POST /files`: hands the multipart stream to the upload pipeline. */
export default async function uploadRoute (fastify: FastifyInstance, options: UploadRouteOptions): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const { family, quota } = options
  const { limits } = options.upload

  // Encapsulated here: only the upload route parses multipart, with explicit limits.
  // throwFileSizeLimit is off because the pipeline enforces the size itself, per purpose,
  // and treats truncation as an error instead of storing a cut file.
  await app.register(multipart, {
    throwFileSizeLimit: false,
    limits: {
      files: 1,
      fileSize: Math.max(limits.maxFileBytes, limits.batchMaxFileBytes) + 1,
      fields: MULTIPART_FIELDS,
      parts: MULTIPART_FIELDS + 1,
      fieldNameSize: MAX_FIELD_NAME_BYTES,
      fieldSize: 64 * 1024,
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
  }, async (request) => {
    // One controller per upload: listeners on the app-wide shutdown signal would pile up.
    const abort = new AbortController()
    const onShutdown = (): void => { abort.abort(app.shutdownSignal.reason) }
    app.shutdownSignal.addEventListener('abort', onShutdown, { once: true })
    if (app.shutdownSignal.aborted) onShutdown()
    const maxMs = options.upload.maxDurationMs
    const deadline = maxMs === undefined ? undefined : setTimeout(() => { abort.abort(ERRORS.uploadTooSlow(maxMs)) }, maxMs)
    try {
      if (!request.isMultipart()) throw ERRORS.unsupportedMediaType(request.headers['content-type'])
      // A project already at its quota is refused before a byte of the body is read.
      await quota.admit(request.project)
      const record = await uploadFile(request.parts() as AsyncIterable<UploadPart>, { project: request.project, signal: abort.signal }, {
        ...options.upload,
        blobStore: app.blobStore,
        fileStore: app.fileStore,
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
      clearTimeout(deadline)
      app.shutdownSignal.removeEventListener('abort', onShutdown)
    }
  })
}
