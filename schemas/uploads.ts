import Type, { type Static } from 'typebox'
import { FileObjectSchema, PurposeSchema } from './files.js'

/**
 * OpenAI's Uploads API (../shared/openai-spec/uploads.json): a file sent in parts of up
 * to 64 MB, assembled and validated on completion (issue 13).
 */

export const UPLOAD_ID_PATTERN = '^upload_[0-9A-HJKMNP-TV-Z]{26}$'
export const PART_ID_PATTERN = '^part_[0-9A-HJKMNP-TV-Z]{26}$'

export const UploadStatusSchema = Type.Union([
  Type.Literal('pending'), Type.Literal('completed'), Type.Literal('cancelled'), Type.Literal('expired')
], { description: 'The status of the Upload: `pending` until completed, cancelled or expired (one hour after creation).' })
export type UploadStatus = Static<typeof UploadStatusSchema>

/** OpenAI's `Upload`; `file` is the File made by completing it, null before. */
export const UploadObjectSchema = Type.Object({
  id: Type.String({ description: 'The Upload identifier: `upload_` followed by a ULID.', examples: ['upload_01J9Z3N4Q8X7V6T5R4P3M2K1H0'] }),
  object: Type.Literal('upload'),
  bytes: Type.Integer({ minimum: 0, description: 'The intended number of bytes to be uploaded.' }),
  created_at: Type.Integer({ description: 'Unix time (seconds) of creation.' }),
  expires_at: Type.Integer({ description: 'Unix time (seconds) when a pending Upload expires: one hour after creation.' }),
  filename: Type.String({ description: 'The name of the file to be uploaded.' }),
  purpose: PurposeSchema,
  status: UploadStatusSchema,
  file: Type.Union([FileObjectSchema, Type.Null()], { description: 'The File made by completing the Upload, or null.' })
}, { $id: 'Upload', description: 'An Upload (OpenAI `Upload`): accepts parts, becomes a File when completed.' })
export type UploadObject = Static<typeof UploadObjectSchema>

/** OpenAI's `UploadPart`. */
export const UploadPartObjectSchema = Type.Object({
  id: Type.String({ description: 'The Part identifier: `part_` followed by a ULID.', examples: ['part_01J9Z3N4Q8X7V6T5R4P3M2K1H0'] }),
  object: Type.Literal('upload.part'),
  created_at: Type.Integer({ description: 'Unix time (seconds) of creation.' }),
  upload_id: Type.String({ description: 'The Upload the Part was added to.' })
}, { $id: 'UploadPart', description: 'A Part of an Upload (OpenAI `UploadPart`).' })
export type UploadPartObject = Static<typeof UploadPartObjectSchema>

/** OpenAI's `FileExpirationAfter`, for the File the Upload becomes. */
export const FileExpirationAfterSchema = Type.Object({
  anchor: Type.Literal('created_at', { description: 'Expiration anchor; only `created_at`.' }),
  seconds: Type.Integer({ minimum: 3600, maximum: 2592000, description: 'Seconds after the anchor when the file expires (1 hour to 30 days).' })
}, { additionalProperties: false })

/** OpenAI's `CreateUploadRequest` (the purposes accepted are those of `POST /files`). */
export const CreateUploadBodySchema = Type.Object({
  filename: Type.String({ minLength: 1, maxLength: 1024, description: 'The name of the file to upload.' }),
  purpose: PurposeSchema,
  bytes: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'The number of bytes in the file; completion checks it. At most UPLOAD_MAX_BYTES (BATCH_MAX_FILE_BYTES for purpose `batch`).' }),
  mime_type: Type.String({ minLength: 1, maxLength: 255, description: 'The MIME type of the file (recorded, not checked).' }),
  expires_after: Type.Optional(FileExpirationAfterSchema)
})
export type CreateUploadBody = Static<typeof CreateUploadBodySchema>

/** OpenAI's `CompleteUploadRequest`. */
export const CompleteUploadBodySchema = Type.Object({
  part_ids: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 100000, description: 'The ordered list of Part ids: the File is their bytes in this order.' }),
  md5: Type.Optional(Type.String({ maxLength: 64, description: 'The hex md5 of the whole file, checked when given.' }))
})
export type CompleteUploadBody = Static<typeof CompleteUploadBodySchema>

export const UploadIdParamsSchema = Type.Object({
  upload_id: Type.String({ description: 'The id of the Upload.' })
})

/**
 * The multipart body of `POST /uploads/{upload_id}/parts`, for the OpenAPI document only:
 * Fastify must not validate a streamed multipart body against a schema.
 */
export const AddUploadPartBodySchema = Type.Object({
  data: Type.String({ format: 'binary', description: 'The chunk of bytes for this Part: at most 64 MiB.' })
}, { description: 'multipart/form-data with one file field, `data`.' })
