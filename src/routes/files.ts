import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { DeleteFileResponseSchema, FileIdParamsSchema, FileObjectSchema, ListFilesQuerySchema, ListFilesResponseSchema } from '../../schemas/files.js'
import type { QuotaGuard } from '../upload/quota.js'
import type { UploadDeps } from '../upload/upload-file.js'
import type { UploadSlots } from '../upload/upload-slots.js'
import contentRoute from './content.js'
import { listPage, routeFamily, toFileObject } from './family.js'
import uploadRoute from './upload.js'

export interface FilesRoutesOptions {
  /** true for `/api/v1` (answers wrapped in `{success, code, message, data}`), false for OpenAI's `/v1`. */
  envelope: boolean
  upload: Omit<UploadDeps, 'blobStore' | 'files'>
  /** Per-project quotas, checked by the upload route. */
  quota: QuotaGuard
  /** The replica's bound on uploads in flight, shared by both families, and the Retry-After of its 503. */
  slots: UploadSlots
  busyRetryAfterSeconds: number
}

/**
 * The Files API. Registered twice by the app, once per route family; the handlers are
 * the same, only the success wrapping and the documented shapes differ.
 */
export default async function filesRoutes (fastify: FastifyInstance, options: FilesRoutesOptions): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const family = routeFamily(options.envelope)

  app.addHook('onRequest', app.authenticate)
  await app.register(uploadRoute, { family, upload: options.upload, quota: options.quota, slots: options.slots, busyRetryAfterSeconds: options.busyRetryAfterSeconds })
  await app.register(contentRoute, { family })

  app.get('/files', {
    schema: {
      operationId: family.operationId('listFiles'),
      summary: 'List files',
      description: 'The caller\'s files, newest first by default, in keyset pages: pass the last id of a page as `after` for the next one while `has_more` is true.',
      tags: family.tags,
      querystring: ListFilesQuerySchema,
      response: { 200: family.ok(ListFilesResponseSchema, 'A page of files.'), 400: family.error, 401: family.error }
    }
  }, async (request) => {
    const { after, purpose, limit = 10000, order = 'desc' } = request.query
    const page = await app.files.list({
      project: request.project,
      limit,
      order,
      ...(after === undefined ? {} : { after }),
      ...(purpose === undefined ? {} : { purpose })
    })
    return family.reply(listPage(page.files.map(toFileObject), page.hasMore))
  })

  app.get('/files/:file_id', {
    schema: {
      operationId: family.operationId('retrieveFile'),
      summary: 'Retrieve a file object',
      tags: family.tags,
      params: FileIdParamsSchema,
      response: { 200: family.ok(FileObjectSchema, 'The file object.'), 401: family.error, 404: family.error }
    }
  }, async (request) => family.reply(toFileObject(await app.files.get(request.project, request.params.file_id))))

  app.delete('/files/:file_id', {
    schema: {
      operationId: family.operationId('deleteFile'),
      summary: 'Delete a file',
      description: 'Removes the file object and its bytes. A second delete answers 404.',
      tags: family.tags,
      params: FileIdParamsSchema,
      response: { 200: family.ok(DeleteFileResponseSchema, 'The file is gone.'), 401: family.error, 404: family.error }
    }
  }, async (request) => {
    // The row goes first, the object after (FileService.delete).
    const deleted = await app.files.delete(request.project, request.params.file_id)
    return family.reply({ id: deleted.id, object: 'file' as const, deleted: true as const })
  })
}
