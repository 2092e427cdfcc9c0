import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { BatchIdParamsSchema, BatchObjectSchema, CreateBatchBodySchema, ListBatchesQuerySchema, ListBatchesResponseSchema } from '../../schemas/batches.js'
import { toBatchObject } from './batch-object.js'
import { listPage, routeFamily } from './family.js'

export interface BatchesRoutesOptions {
  /** true for `/api/v1` (answers wrapped in `{success, code, message, data}`), false for OpenAI's `/v1`. */
  envelope: boolean
  /** BATCH_ALLOWED_URLS: the `endpoint`s the create body accepts (and the OpenAPI document lists). */
  allowedUrls: readonly string[]
}

/**
 * The Batches API (OpenAI's /batches), registered once per route family. Thin: the
 * schemas validate, the batch service decides, the family wraps the answer.
 */
export default async function batchesRoutes (fastify: FastifyInstance, options: BatchesRoutesOptions): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const family = routeFamily(options.envelope, 'batches')
  app.addHook('onRequest', app.authenticate)

  app.post('/batches', {
    schema: {
      operationId: family.operationId('createBatch'),
      summary: 'Create a batch',
      description: 'Runs the requests of an uploaded `batch` file against the configured upstream. Answered 200 with the batch in `validating`, as OpenAI answers. Refused with 400 and `param` when the file cannot run (not purpose `batch`, expired, its lines use another url than `endpoint`, its model has no upstream); 404 for a missing or another project\'s file; 503 when no upstream is configured (UPSTREAM_BASE_URL, UPSTREAM_MODELS).',
      tags: family.tags,
      body: CreateBatchBodySchema(options.allowedUrls),
      response: { 200: family.ok(BatchObjectSchema, 'The batch, created.'), 400: family.error, 401: family.error, 404: family.error, 503: family.error }
    }
  }, async (request) => {
    const { input_file_id: inputFileId, endpoint, completion_window: completionWindow, metadata, output_expires_after: expiresAfter } = request.body
    const batch = await app.batches.create({
      project: request.project,
      inputFileId,
      endpoint,
      completionWindow,
      metadata: metadata ?? null,
      outputExpiresAfterSeconds: expiresAfter?.seconds ?? null
    })
    return family.reply(toBatchObject(batch))
  })

  app.get('/batches', {
    schema: {
      operationId: family.operationId('listBatches'),
      summary: 'List batches',
      description: 'The caller\'s batches, newest first, in keyset pages: pass the last id of a page as `after` for the next one while `has_more` is true.',
      tags: family.tags,
      querystring: ListBatchesQuerySchema,
      response: { 200: family.ok(ListBatchesResponseSchema, 'A page of batches.'), 400: family.error, 401: family.error }
    }
  }, async (request) => {
    const { after, limit = 20 } = request.query
    const page = await app.batches.list(request.project, { limit, ...(after === undefined ? {} : { after }) })
    return family.reply(listPage(page.batches.map(toBatchObject), page.hasMore))
  })

  const retrieve = {
    schema: {
      operationId: family.operationId('retrieveBatch'),
      summary: 'Retrieve a batch',
      description: 'The batch, its request counts and usage current while it runs.',
      tags: family.tags,
      params: BatchIdParamsSchema,
      response: { 200: family.ok(BatchObjectSchema, 'The batch.'), 401: family.error, 404: family.error }
    }
  }
  app.get('/batches/:batch_id', retrieve, async (request) => family.reply(toBatchObject(await app.batches.get(request.project, request.params.batch_id))))
  if (family.wrapped) {
    // The envelope contract given to the first users documents a retrieve by POST as well.
    app.post('/batches/:batch_id', {
      schema: { ...retrieve.schema, operationId: family.operationId('retrieveBatchByPost'), summary: 'Retrieve a batch (POST)', description: 'The same answer as GET; any body is ignored.' }
    }, async (request) => family.reply(toBatchObject(await app.batches.get(request.project, request.params.batch_id))))
  }

  app.post('/batches/:batch_id/cancel', {
    schema: {
      operationId: family.operationId('cancelBatch'),
      summary: 'Cancel a batch',
      description: 'A validating or running batch becomes `cancelling`, then `cancelled` within seconds; results completed so far are kept in its output file. A batch already finalizing, cancelling or finished is answered as it is.',
      tags: family.tags,
      params: BatchIdParamsSchema,
      response: { 200: family.ok(BatchObjectSchema, 'The batch after the cancel.'), 401: family.error, 404: family.error }
    }
  }, async (request) => family.reply(toBatchObject(await app.batches.cancel(request.project, request.params.batch_id))))
}
