import multipart from '@fastify/multipart'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import type { TSchema } from 'typebox'
import { EnvelopeSchema, ErrorEnvelopeSchema, envelope } from '../../schemas/envelope.js'
import { ErrorResponseSchema } from '../../schemas/errors.js'
import { FileIdParamsSchema, FileObjectSchema, UploadBodySchema, type FileObject } from '../../schemas/files.js'
import { ERRORS } from '../errors.js'
import { isFileId } from '../ids.js'
import type { FileRecord } from '../metadata/file-store.js'
import { uploadFile, type UploadDeps, type UploadPart } from '../upload/upload-file.js'

export interface FilesRoutesOptions {
  /** true for `/api/v1` (answers wrapped in `{success, code, message, data}`), false for OpenAI's `/v1`. */
  envelope: boolean
  upload: Omit<UploadDeps, 'blobStore' | 'fileStore'>
}

export function toFileObject (record: FileRecord): FileObject {
  const object: FileObject = {
    id: record.id,
    object: 'file',
    bytes: record.bytes,
    created_at: record.createdAt,
    expires_at: record.expiresAt,
    filename: record.filename,
    purpose: record.purpose,
    status: 'processed',
    status_details: null
  }
  if (record.warnings.length > 0) object.warnings = record.warnings
  return object
}

const MULTIPART_FIELDS = 10

/**
 * The Files API routes. Registered twice by the app, once per route family; the
 * handlers are the same, only the success wrapping and documented shapes differ.
 */
export default async function filesRoutes (fastify: FastifyInstance, options: FilesRoutesOptions): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const wrap = <T extends TSchema>(schema: T, description: string) => (options.envelope ? EnvelopeSchema(schema, description) : schema)
  const errorSchema = options.envelope ? ErrorEnvelopeSchema : ErrorResponseSchema
  const reply = <T>(data: T) => (options.envelope ? envelope(data) : data)
  const tags = [options.envelope ? 'files (envelope)' : 'files (OpenAI)']
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
      fieldNameSize: 100,
      fieldSize: 64 * 1024,
      headerPairs: 100
    }
  })

  app.addHook('onRequest', app.authenticate)

  app.post('/files', {
    schema: {
      operationId: options.envelope ? 'apiCreateFile' : 'createFile',
      summary: 'Upload a file',
      description: 'Streams a multipart upload into storage. Files with purpose `batch` are validated line by line; an invalid one is refused with every faulty line named and nothing is stored.',
      tags,
      consumes: ['multipart/form-data'],
      response: {
        200: wrap(FileObjectSchema, 'The stored file.'),
        400: errorSchema, 401: errorSchema, 413: errorSchema, 415: errorSchema, 503: errorSchema, 507: errorSchema
      }
    },
    config: {
      // A schema.body would make Fastify validate a streamed multipart body (and fail);
      // the body is documented for OpenAPI only.
      swaggerTransform: ({ schema, url }) => ({ schema: { ...schema, body: UploadBodySchema }, url })
    }
  }, async (request) => {
    if (!request.isMultipart()) throw ERRORS.unsupportedMediaType(request.headers['content-type'])
    const parts = request.parts() as AsyncIterable<UploadPart>
    const record = await uploadFile(parts, { project: request.project }, {
      ...options.upload,
      blobStore: app.blobStore,
      fileStore: app.fileStore
    })
    request.log.info({ fileId: record.id, bytes: record.bytes, purpose: record.purpose, project: record.project }, 'file stored')
    return reply(toFileObject(record))
  })

  app.get('/files/:file_id', {
    schema: {
      operationId: options.envelope ? 'apiRetrieveFile' : 'retrieveFile',
      summary: 'Retrieve a file object',
      tags,
      params: FileIdParamsSchema,
      response: { 200: wrap(FileObjectSchema, 'The file object.'), 401: errorSchema, 404: errorSchema }
    }
  }, async (request) => {
    const id = request.params.file_id
    const record = isFileId(id) ? await app.fileStore.get(request.project, id, Math.floor(options.upload.now() / 1000)) : null
    if (record === null) throw ERRORS.fileNotFound(id)
    return reply(toFileObject(record))
  })
}
