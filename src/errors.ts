import type { BatchError } from '../schemas/batch-error.js'
import type { ErrorObject } from '../schemas/errors.js'
import { BlobNotFoundError } from './storage/blob-store.js'

/**
 * The one error type of the service. It carries the HTTP status and OpenAI's error
 * object; the error handler renders it bare for `/v1` and in the envelope for `/api/v1`.
 */
export class ApiError extends Error {
  readonly statusCode: number
  readonly type: string
  readonly code: string | null
  readonly param: string | null
  readonly lineErrors?: { errors: BatchError[], count: number }

  constructor (statusCode: number, type: string, code: string | null, param: string | null, message: string,
    options?: { cause?: unknown, lineErrors?: { errors: BatchError[], count: number } }) {
    super(message, { cause: options?.cause })
    this.name = 'ApiError'
    this.statusCode = statusCode
    this.type = type
    this.code = code
    this.param = param
    if (options?.lineErrors !== undefined) this.lineErrors = options.lineErrors
  }

  toErrorObject (): ErrorObject {
    const body: ErrorObject = { message: this.message, type: this.type, param: this.param, code: this.code }
    if (this.lineErrors !== undefined) {
      body.errors = this.lineErrors.errors
      body.error_count = this.lineErrors.count
    }
    return body
  }
}

const INVALID = 'invalid_request_error'

/** Client text echoed in a message is cut: a client can send kilobytes of it, and a message must stay readable. */
function cut (text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text
}

function mib (bytes: number): string {
  return `${Math.round((bytes / (1024 * 1024)) * 100) / 100} MiB`
}

/** Every error the service answers with, in one table (no ad-hoc strings in routes). */
export const ERRORS = {
  missingApiKey: () => new ApiError(401, INVALID, 'missing_api_key', null,
    'You didn\'t provide an API key. Send it in the Authorization header: "Authorization: Bearer YOUR_KEY".'),
  invalidApiKey: () => new ApiError(401, INVALID, 'invalid_api_key', null, 'Incorrect API key provided.'),
  fileNotFound: (id: string) => new ApiError(404, INVALID, 'file_not_found', 'file_id', `No such File object: ${id}`),
  /** Fastify's router refuses the path (bad percent-encoding) before any route runs; the path is not echoed. */
  malformedUrl: () => new ApiError(400, INVALID, 'malformed_url', null,
    'The request path is not a valid URL: it has an invalid percent-encoding.'),
  /** A path parameter past the router's maxParamLength: no file id is that long. */
  pathTooLong: (maxParamLength: number) => new ApiError(414, INVALID, 'uri_too_long', null,
    `A path segment is longer than ${maxParamLength} characters; no file id is that long.`),
  routeNotFound: (method: string, url: string) => new ApiError(404, INVALID, 'unknown_url', null,
    `Unrecognized request URL (${method} ${cut(url.split('?')[0] ?? '', 200)}).`),
  invalidParameter: (param: string | null, message: string) => new ApiError(400, INVALID, 'invalid_parameter', param, message),
  missingParameter: (param: string, message: string) => new ApiError(400, INVALID, 'missing_required_parameter', param, message),
  invalidPurpose: (value: string, valid: readonly string[]) => new ApiError(400, INVALID, 'invalid_value', 'purpose',
    `'${cut(value, 64)}' is not one of ${valid.map((p) => `'${p}'`).join(', ')} - 'purpose'`),
  invalidMultipart: (message: string, cause?: unknown) => new ApiError(400, INVALID, 'invalid_multipart', null, message, { cause }),
  unsupportedMediaType: (contentType: string | undefined) => new ApiError(415, INVALID, 'unsupported_media_type', null,
    `Content-Type ${contentType === undefined ? '(none)' : JSON.stringify(cut(contentType, 100))} is not supported here; send multipart/form-data with the fields "file" and "purpose".`),
  fileTooLarge: (limit: number, purpose: string | undefined) => new ApiError(413, INVALID, 'file_too_large', 'file',
    `File is too large: the limit${purpose === undefined ? '' : ` for purpose '${purpose}'`} is ${limit} bytes (${mib(limit)}).`),
  /** Refused from the Content-Length alone, before a byte of the body is read: no file of it could fit. */
  uploadTooLarge: (contentLength: number, limit: number) => new ApiError(413, INVALID, 'file_too_large', 'file',
    `File is too large: the request declares ${contentLength} bytes (Content-Length), more than the largest file accepted, ${limit} bytes (${mib(limit)}).`),
  invalidBatchFile: (message: string, errors: BatchError[], count: number) => new ApiError(400, INVALID, 'invalid_batch_file', 'file',
    message, { lineErrors: { errors, count } }),
  rangeNotSatisfiable: (size: number) => new ApiError(416, INVALID, 'range_not_satisfiable', 'range',
    `The requested range is not satisfiable; the file has ${size} bytes.`),
  /** If-Match or If-Unmodified-Since named another version of an immutable file (RFC 9110 §13.2.2). */
  preconditionFailed: (header: 'if-match' | 'if-unmodified-since') => new ApiError(412, INVALID, 'precondition_failed', header,
    `The ${header === 'if-match' ? 'If-Match' : 'If-Unmodified-Since'} condition does not hold for this file.`),
  contentUnavailable: (id: string, cause: unknown) => (cause instanceof BlobNotFoundError
    ? new ApiError(500, 'server_error', 'content_missing', null, 'The server had an error while processing your request.', { cause: new Error(`object of ${id} is missing`, { cause }) })
    : ERRORS.storageUnavailable(cause)),
  storageUnavailable: (cause?: unknown) => new ApiError(503, 'server_error', 'storage_unavailable', null,
    'The file storage is unavailable; nothing was stored. Try again later.', { cause }),
  /** 504, as a gateway answers for an upstream that did not answer in time: slow, not refusing. */
  storageTimeout: (cause?: unknown) => new ApiError(504, 'server_error', 'storage_timeout', null,
    'The file storage did not answer in time; nothing was stored. Try again later.', { cause }),
  /** The row of a stored file could not be written: the object was removed again. */
  databaseUnavailable: (cause?: unknown) => new ApiError(503, 'server_error', 'database_unavailable', null,
    'The metadata database is unavailable; nothing was stored. Try again later.', { cause }),
  storageFull: (cause?: unknown) => new ApiError(507, 'server_error', 'insufficient_storage', null,
    'The file storage is full; nothing was stored.', { cause }),
  /** 403, not 429: retrying cannot help (the openai SDK retries 429 and 5xx, not 403) until files are deleted. */
  quotaExceeded: (detail: string) => new ApiError(403, INVALID, 'quota_exceeded', null,
    `Upload file capacity exceeded: ${detail} Delete files to upload more; nothing was stored.`),
  /** OpenAI's own shape for request-rate limits (type `requests`); retry-after says when. */
  rateLimited: (max: number, windowMs: number, retryAfterSeconds: number) => new ApiError(429, 'requests', 'rate_limit_exceeded', null,
    `Rate limit reached for this API key: at most ${max} requests per ${windowMs / 1000} s. Retry in ${retryAfterSeconds} s.`),
  overloaded: (retryAfterSeconds: number) => new ApiError(503, 'server_error', 'server_overloaded', null,
    `The server is overloaded; nothing was done. Retry in ${retryAfterSeconds} s.`),
  /** 503, as for overload: the openai SDKs retry it, after Retry-After. */
  tooManyUploads: (max: number, retryAfterSeconds: number) => new ApiError(503, 'server_error', 'too_many_concurrent_uploads', null,
    `This server is already receiving ${max} uploads, its limit; nothing was read or stored. Retry in ${retryAfterSeconds} s.`),
  uploadTooSlow: (maxMs: number) => new ApiError(408, INVALID, 'upload_timeout', 'file',
    `The upload took longer than the longest allowed (${maxMs} ms, UPLOAD_MAX_DURATION_MS); nothing was stored.`),
  shuttingDown: () => new ApiError(503, 'server_error', 'server_shutting_down', null,
    'The server is shutting down and abandoned this upload; nothing was stored. Try again.'),
  invalidProjectHeader: (header: string) => new ApiError(400, INVALID, 'invalid_project', header,
    `The ${header} header must name a project of 1-64 characters of A-Z a-z 0-9 . _ -.`),
  batchNotFound: (id: string) => new ApiError(404, INVALID, 'batch_not_found', 'batch_id', `No such Batch object: ${cut(id, 200)}`),
  /** The input file of a batch: missing or another project's (the same answer, as for files). */
  inputFileNotFound: (id: string) => new ApiError(404, INVALID, 'file_not_found', 'input_file_id', `No such File object: ${cut(id, 200)}`),
  inputFileExpired: (id: string) => new ApiError(400, INVALID, 'file_expired', 'input_file_id',
    `File ${id} has expired; upload the requests again and create the batch with the new file.`),
  inputFileNotBatch: (id: string, purpose: string) => new ApiError(400, INVALID, 'invalid_file_purpose', 'input_file_id',
    `File ${id} has purpose '${purpose}'; a batch runs a file uploaded with purpose 'batch'.`),
  /** Should a stored batch file not start with a request (the upload validator lets none through), it cannot run. */
  inputFileUnreadable: (id: string, why: string) => new ApiError(400, INVALID, 'invalid_input_file', 'input_file_id',
    `File ${id} cannot run as a batch: ${why}`),
  endpointMismatch: (id: string, fileUrl: string, endpoint: string) => new ApiError(400, INVALID, 'endpoint_mismatch', 'endpoint',
    `The requests of file ${id} use url '${cut(fileUrl, 200)}', not the batch's endpoint '${endpoint}'; create the batch with endpoint '${cut(fileUrl, 200)}'.`),
  modelNotRouted: (id: string, model: string | null) => new ApiError(400, INVALID, 'model_not_routed', 'input_file_id',
    `No upstream serves model ${model === null ? '(none)' : JSON.stringify(cut(model, 200))}, the model of the requests of file ${id}: add it to UPSTREAM_MODELS, or set UPSTREAM_BASE_URL to serve every other model.`),
  /** 503: the deployment, not the request, is at fault; nothing was created. */
  upstreamNotConfigured: () => new ApiError(503, 'server_error', 'upstream_not_configured', null,
    'No upstream is configured to run batches: set UPSTREAM_BASE_URL (an OpenAI-compatible base URL such as http://vllm:8000/v1), or UPSTREAM_MODELS (model=baseUrl pairs). No batch was created.'),
  // OpenAI's Uploads API (issue 13). Refusals are 400, not 409: the openai SDKs retry 409.
  uploadNotFound: (id: string) => new ApiError(404, INVALID, 'upload_not_found', 'upload_id', `No such Upload object: ${cut(id, 200)}`),
  uploadNotPending: (id: string, status: string) => new ApiError(400, INVALID, 'upload_not_pending', 'upload_id',
    status === 'completing'
      ? `Upload ${id} is being completed; send the completion again once it is done to get its File.`
      : `Upload ${id} is ${status}; parts can be added, and the upload completed or cancelled, only while it is pending.`),
  uploadBytesTooLarge: (bytes: number, limit: number, purpose: string) => new ApiError(400, INVALID, 'upload_too_large', 'bytes',
    `An upload of ${bytes} bytes is too large: the limit for purpose '${purpose}' is ${limit} bytes (${mib(limit)}).`),
  tooManyLiveUploads: (max: number) => new ApiError(403, INVALID, 'too_many_uploads', null,
    `The project already has ${max} pending uploads, the most it may have at once; complete or cancel one first.`),
  partTooLarge: (limit: number) => new ApiError(413, INVALID, 'part_too_large', 'data',
    `Part is too large: a part holds at most ${limit} bytes (${mib(limit)}); nothing of it was kept.`),
  tooManyParts: (max: number) => new ApiError(400, INVALID, 'too_many_parts', 'data',
    `The upload already has ${max} parts, the most one upload may have.`),
  partsExceedUpload: (bytes: number, allowance: number) => new ApiError(400, INVALID, 'upload_parts_too_large', 'data',
    `The parts sent would hold more than ${allowance} bytes, the most an upload of ${bytes} bytes may be sent (twice its bytes and one part); this part was not kept.`),
  partNotFound: (id: string, uploadId: string) => new ApiError(400, INVALID, 'part_not_found', 'part_ids',
    `No part ${JSON.stringify(cut(id, 64))} was added to upload ${uploadId}.`),
  duplicatePart: (id: string) => new ApiError(400, INVALID, 'duplicate_part', 'part_ids',
    `Part ${JSON.stringify(cut(id, 64))} is listed more than once in part_ids.`),
  uploadBytesMismatch: (expected: number, got: number) => new ApiError(400, INVALID, 'upload_bytes_mismatch', 'part_ids',
    `The parts listed hold ${got} bytes, but the upload was created for ${expected} bytes.`),
  md5Mismatch: () => new ApiError(400, INVALID, 'md5_mismatch', 'md5',
    'The md5 of the parts\' bytes is not the md5 given; no file was made and the upload is cancelled.'),
  internal: (cause?: unknown) => new ApiError(500, 'server_error', 'internal_error', null,
    'The server had an error while processing your request.', { cause })
} as const
