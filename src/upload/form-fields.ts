import type { Readable } from 'node:stream'
import { UPLOAD_PURPOSES, type Purpose } from '../../schemas/files.js'
import { ERRORS } from '../errors.js'

/** The upload's form fields: which are read, and what makes one unacceptable. */

/** A multipart part as @fastify/multipart yields it (only what the pipeline reads). */
export type UploadPart =
  | { type: 'field', fieldname: string, value: unknown, valueTruncated?: boolean }
  | { type: 'file', fieldname: string, filename: string | undefined, mimetype: string, file: Readable & { truncated?: boolean } }

/**
 * Longest multipart field name. Passed to @fastify/multipart as `fieldNameSize`, which
 * busboy does not enforce (a 10 KB name went through and was echoed in messages), so the
 * pipeline checks it itself.
 */
export const MAX_FIELD_NAME_BYTES = 100

/** The fields the pipeline reads: a value cut at busboy's fieldSize must not be taken for a shorter one. */
const KNOWN_FIELDS: ReadonlySet<string> = new Set(['purpose', 'expires_after[anchor]', 'expires_after[seconds]', 'file'])

/** Refusals decided by a part's headers or by busboy's limits, before its content is used. */
export function checkPart (part: UploadPart): void {
  if (Buffer.byteLength(part.fieldname) > MAX_FIELD_NAME_BYTES) {
    throw ERRORS.invalidMultipart(`A form field name is longer than ${MAX_FIELD_NAME_BYTES} bytes; send "file", "purpose" and optionally "expires_after".`)
  }
  if (part.type === 'field' && part.valueTruncated === true && KNOWN_FIELDS.has(part.fieldname)) {
    throw ERRORS.invalidParameter(part.fieldname, `The "${part.fieldname}" field is too long.`)
  }
  // RFC 7578 §4.2: a file part carries a filename. Without one, nothing says what the bytes are.
  if (part.type === 'file' && part.fieldname === 'file' && part.filename === undefined) {
    throw ERRORS.missingParameter('file', 'The "file" part has no filename: send Content-Disposition: form-data; name="file"; filename="data.jsonl".')
  }
}

function isPurpose (value: string): value is Purpose {
  return (UPLOAD_PURPOSES as readonly string[]).includes(value)
}

export interface ExpiresAfterFields { anchor?: unknown, seconds?: unknown }

export const MIN_EXPIRES_AFTER_SECONDS = 3600
export const MAX_EXPIRES_AFTER_SECONDS = 2592000

/**
 * OpenAI's `expires_after` (FileExpirationAfter): anchor `created_at` and 3600 to
 * 2592000 seconds, sent as the multipart fields `expires_after[anchor]` and
 * `expires_after[seconds]`. Returns the lifetime in seconds, or null when not given.
 */
export function parseExpiresAfter (fields: ExpiresAfterFields): number | null {
  if (fields.anchor === undefined && fields.seconds === undefined) return null
  if (fields.anchor !== 'created_at') {
    throw ERRORS.invalidParameter('expires_after[anchor]', 'expires_after[anchor] must be \'created_at\' (and is required with expires_after[seconds]).')
  }
  const text = typeof fields.seconds === 'string' ? fields.seconds.trim() : ''
  const seconds = /^\d{1,10}$/.test(text) ? Number(text) : Number.NaN
  if (!(seconds >= MIN_EXPIRES_AFTER_SECONDS && seconds <= MAX_EXPIRES_AFTER_SECONDS)) {
    throw ERRORS.invalidParameter('expires_after[seconds]', `expires_after[seconds] must be a whole number from ${MIN_EXPIRES_AFTER_SECONDS} to ${MAX_EXPIRES_AFTER_SECONDS}.`)
  }
  return seconds
}

export function parsePurpose (value: unknown): Purpose {
  const text = typeof value === 'string' ? value.trim() : ''
  if (text === '') throw ERRORS.missingParameter('purpose', `Missing "purpose": one of ${UPLOAD_PURPOSES.join(', ')}.`)
  if (!isPurpose(text)) throw ERRORS.invalidPurpose(text, UPLOAD_PURPOSES)
  return text
}
