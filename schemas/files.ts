import Type, { type Static } from 'typebox'
import { BatchErrorSchema } from './batch-error.js'

/** Upload purposes accepted by `POST /files` (OpenAI's CreateFileRequest.purpose). */
export const PurposeSchema = Type.Union([
  Type.Literal('assistants'), Type.Literal('batch'), Type.Literal('fine-tune'),
  Type.Literal('vision'), Type.Literal('user_data'), Type.Literal('evals')
], { description: 'The intended purpose of the file.' })
export type Purpose = Static<typeof PurposeSchema>
export const UPLOAD_PURPOSES: readonly Purpose[] = PurposeSchema.anyOf.map((literal) => literal.const)

/**
 * Purposes a stored file can have: the upload purposes, and `batch_output`, which only the
 * batch engine writes (OpenAI refuses it on upload too), for a batch's output and error files.
 */
export const FilePurposeSchema = Type.Union([...PurposeSchema.anyOf, Type.Literal('batch_output')],
  { description: 'The intended purpose of the file; `batch_output` for the results of a batch.' })
export type FilePurpose = Static<typeof FilePurposeSchema>

export const FILE_ID_PATTERN = '^file-[0-9A-HJKMNP-TV-Z]{26}$'

/** OpenAI's `OpenAIFile`, plus `warnings` (non-fatal batch findings such as model_mismatch). */
export const FileObjectSchema = Type.Object({
  id: Type.String({ description: 'The file identifier: `file-` followed by a ULID.', examples: ['file-01J9Z3N4Q8X7V6T5R4P3M2K1H0'] }),
  object: Type.Literal('file'),
  bytes: Type.Integer({ minimum: 0, description: 'Size of the file in bytes.' }),
  created_at: Type.Integer({ description: 'Unix time (seconds) of creation.' }),
  expires_at: Type.Union([Type.Integer(), Type.Null()], { description: 'Unix time (seconds) when the file expires, or null.' }),
  filename: Type.String(),
  purpose: FilePurposeSchema,
  status: Type.Literal('processed', { description: 'Deprecated by OpenAI; always `processed` here.' }),
  warnings: Type.Optional(Type.Array(BatchErrorSchema, {
    description: 'Non-fatal findings of batch validation (e.g. `model_mismatch` under BATCH_MODEL_POLICY=warn). Absent when there are none.'
  }))
}, { $id: 'FileObject', description: 'A stored file (OpenAI `OpenAIFile`).' })
export type FileObject = Static<typeof FileObjectSchema>

export const FileIdParamsSchema = Type.Object({
  file_id: Type.String({ description: 'The id of the file.' })
})
export type FileIdParams = Static<typeof FileIdParamsSchema>

/**
 * The multipart body of `POST /files`, for the OpenAPI document only: Fastify must not
 * validate a streamed multipart body against a schema (see the upload route).
 */
export const UploadBodySchema = Type.Object({
  file: Type.String({ format: 'binary', description: 'The file. For purpose `batch`: a `.jsonl` file, one request per line.' }),
  purpose: PurposeSchema,
  'expires_after[anchor]': Type.Optional(Type.Literal('created_at', { description: 'Expiration anchor; only `created_at`.' })),
  'expires_after[seconds]': Type.Optional(Type.Integer({ minimum: 3600, maximum: 2592000, description: 'Seconds after the anchor when the file expires.' }))
}, { description: 'multipart/form-data; fields may come in any order.' })

export const ListFilesQuerySchema = Type.Object({
  after: Type.Optional(Type.String({ pattern: FILE_ID_PATTERN, description: 'A file id: the page starts after it (in `order`). The file need not exist any more.' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000, default: 10000, description: 'Files per page, 1 to 10,000.' })),
  order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')], { default: 'desc', description: 'By creation time.' })),
  purpose: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Only files with this purpose.' }))
})
export type ListFilesQuery = Static<typeof ListFilesQuerySchema>

/** OpenAI's `ListFilesResponse`; `first_id`/`last_id` are null on an empty page. */
export const ListFilesResponseSchema = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(FileObjectSchema),
  first_id: Type.Union([Type.String(), Type.Null()]),
  last_id: Type.Union([Type.String(), Type.Null()]),
  has_more: Type.Boolean({ description: 'Whether another page follows this one.' })
})

/** OpenAI's `DeleteFileResponse`. */
export const DeleteFileResponseSchema = Type.Object({
  id: Type.String(),
  object: Type.Literal('file'),
  deleted: Type.Literal(true)
})
