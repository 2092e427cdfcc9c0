import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { CompleteUploadBodySchema, CreateUploadBodySchema, UploadIdParamsSchema, UploadObjectSchema } from '../../schemas/uploads.js'
import { ApiError } from '../errors.js'
import { refusedUploadOutcome } from '../upload/outcome.js'
import type { QuotaGuard } from '../upload/quota.js'
import type { UploadDeps } from '../upload/upload-file.js'
import type { UploadSlots } from '../upload/upload-slots.js'
import { routeFamily } from './family.js'
import uploadPartsRoute from './upload-parts.js'
import { abortOnShutdownOrDeadline, acquireUploadSlot } from './upload-guard.js'
import { toUploadObject } from './upload-object.js'

export interface UploadsRoutesOptions {
  /** true for `/api/v1` (answers wrapped in `{success, code, message, data}`), false for OpenAI's `/v1`. */
  envelope: boolean
  /** The pipeline of `POST /files`, which completion runs over the parts. */
  pipeline: Omit<UploadDeps, 'blobStore' | 'files' | 'limits' | 'beforeCommit'>
  quota: QuotaGuard
  /** The replica's upload slots, shared with `POST /files`: parts and completions hold one each. */
  slots: UploadSlots
  busyRetryAfterSeconds: number
}

/** A completion lists up to UPLOAD_MAX_PARTS ids of 31 characters: more than Fastify's 1 MiB. */
const COMPLETE_BODY_LIMIT = 4 * 1024 * 1024

/**
 * OpenAI's Uploads API (issue 13), registered once per route family. Thin: the schemas
 * validate, the upload service decides, the family wraps the answer.
 */
export default async function uploadsRoutes (fastify: FastifyInstance, options: UploadsRoutesOptions): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const family = routeFamily(options.envelope, 'uploads')
  app.addHook('onRequest', app.authenticate)
  await app.register(uploadPartsRoute, { family, slots: options.slots, busyRetryAfterSeconds: options.busyRetryAfterSeconds, maxDurationMs: options.pipeline.maxDurationMs })

  app.post('/uploads', {
    schema: {
      operationId: family.operationId('createUpload'),
      summary: 'Create an upload',
      description: 'An Upload to add parts of up to 64 MiB to, in any order and in parallel; completing it makes a File. It expires one hour after creation. Refused with 400 `upload_too_large` past UPLOAD_MAX_BYTES (BATCH_MAX_FILE_BYTES for purpose `batch`), 403 `too_many_uploads` past PROJECT_MAX_PENDING_UPLOADS, 403 `quota_exceeded` for a project at its quota.',
      tags: family.tags,
      body: CreateUploadBodySchema,
      response: { 200: family.ok(UploadObjectSchema, 'The Upload, pending.'), 400: family.error, 401: family.error, 403: family.error, 503: family.error }
    }
  }, async (request) => {
    const { filename, purpose, bytes, mime_type: mimeType, expires_after: expiresAfter } = request.body
    // As `POST /files`: a project already at its quota is refused before anything is sent.
    await options.quota.admit(request.project)
    const upload = await app.uploads.create({ project: request.project, filename, purpose, bytes, mimeType, fileExpiresAfterSeconds: expiresAfter?.seconds ?? null })
    return family.reply(toUploadObject(app.uploads, upload))
  })

  app.post('/uploads/:upload_id/complete', {
    bodyLimit: COMPLETE_BODY_LIMIT,
    schema: {
      operationId: family.operationId('completeUpload'),
      summary: 'Complete an upload',
      description: 'Makes the File: the parts listed, in this order, read in one pass that checks `bytes`, the `md5` when given and, for purpose `batch`, every line with the rules of `POST /files` (the same `invalid_batch_file` answer for the same bytes). A refused content cancels the upload and leaves nothing; a part list to fix (400 `part_not_found`, `duplicate_part`, `upload_bytes_mismatch`) leaves it pending. Completing a completed upload answers it again.',
      tags: family.tags,
      params: UploadIdParamsSchema,
      body: CompleteUploadBodySchema,
      response: { 200: family.ok(UploadObjectSchema, 'The Upload, completed, with its File.'), 400: family.error, 401: family.error, 403: family.error, 404: family.error, 408: family.error, 413: family.error, 503: family.error, 504: family.error, 507: family.error }
    }
  }, async (request, reply) => {
    const abort = abortOnShutdownOrDeadline(app.shutdownSignal, options.pipeline.maxDurationMs)
    let release: (() => void) | null = null
    try {
      // Found (and the project's) before a slot is taken: a 404 costs no slot.
      const alreadyCompleted = (await app.uploads.get(request.project, request.params.upload_id)).state === 'completed'
      release = acquireUploadSlot(options.slots, reply, options.busyRetryAfterSeconds)
      const { upload, file } = await app.uploads.complete(request.project, request.params.upload_id, {
        partIds: request.body.part_ids,
        ...(request.body.md5 === undefined ? {} : { md5: request.body.md5 }),
        signal: abort.signal,
        pipeline: options.pipeline,
        ...(options.quota.enabled ? { fits: options.quota.fits } : {})
      })
      if (file !== null) request.log.info({ uploadId: upload.id, fileId: file.id, bytes: file.bytes, project: file.project }, 'upload completed')
      // Counted as `POST /files` counts its uploads: a File stored, or why not.
      if (file !== null && !alreadyCompleted) app.metrics.recordUpload({ outcome: 'stored', purpose: file.purpose, bytes: file.bytes })
      return family.reply(toUploadObject(app.uploads, upload, file))
    } catch (error) {
      if (release !== null) {
        const outcome = refusedUploadOutcome(error, abort.signal.aborted)
        app.metrics.recordUpload(error instanceof ApiError && error.lineErrors !== undefined && outcome === 'invalid' ? { outcome, lineErrors: error.lineErrors } : { outcome })
      }
      throw error
    } finally {
      release?.()
      abort.dispose()
    }
  })

  app.post('/uploads/:upload_id/cancel', {
    schema: {
      operationId: family.operationId('cancelUpload'),
      summary: 'Cancel an upload',
      description: 'No part may be added after; the parts are removed. Cancelling a cancelled upload answers it again; a completed or expired one is refused (400 `upload_not_pending`).',
      tags: family.tags,
      params: UploadIdParamsSchema,
      response: { 200: family.ok(UploadObjectSchema, 'The Upload, cancelled.'), 400: family.error, 401: family.error, 404: family.error }
    }
  }, async (request) => family.reply(toUploadObject(app.uploads, await app.uploads.cancel(request.project, request.params.upload_id))))
}
