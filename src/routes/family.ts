import type { TSchema } from 'typebox'
import { EnvelopeSchema, ErrorEnvelopeSchema, envelope } from '../../schemas/envelope.js'
import { ErrorResponseSchema } from '../../schemas/errors.js'
import type { FileObject } from '../../schemas/files.js'
import type { FileRecord } from '../metadata/file-store.js'

/**
 * What differs between the two route families: `/v1` answers OpenAI's bare shapes,
 * `/api/v1` wraps the same data in `{success, code, message, data}`.
 */
export function routeFamily (wrapped: boolean, resource: 'files' | 'batches' | 'uploads' = 'files') {
  return {
    wrapped,
    tags: [wrapped ? `${resource} (envelope)` : `${resource} (OpenAI)`],
    operationId: (name: string) => (wrapped ? `api${name[0]?.toUpperCase() ?? ''}${name.slice(1)}` : name),
    ok: <T extends TSchema>(schema: T, description: string) => (wrapped ? EnvelopeSchema(schema, description) : schema),
    error: wrapped ? ErrorEnvelopeSchema : ErrorResponseSchema,
    reply: <T>(data: T) => (wrapped ? envelope(data) : data)
  }
}

export type RouteFamily = ReturnType<typeof routeFamily>

export function toFileObject (record: FileRecord): FileObject {
  const object: FileObject = {
    id: record.id,
    object: 'file',
    bytes: record.bytes,
    created_at: record.createdAt,
    expires_at: record.expiresAt,
    filename: record.filename,
    purpose: record.purpose,
    status: 'processed'
  }
  if (record.warnings.length > 0) object.warnings = record.warnings
  return object
}

/** OpenAI's list page: `first_id`/`last_id` null on an empty page. */
export function listPage<T extends { id: string }> (data: T[], hasMore: boolean): { object: 'list', data: T[], first_id: string | null, last_id: string | null, has_more: boolean } {
  return { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: hasMore }
}
