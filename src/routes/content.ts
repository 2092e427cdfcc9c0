import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import Type from 'typebox'
import { FileIdParamsSchema, type FileIdParams } from '../../schemas/files.js'
import { ERRORS } from '../errors.js'
import { evaluatePreconditions, ifRangeHolds, type Validators } from '../http/conditional.js'
import { contentDisposition } from '../http/content-disposition.js'
import { parseRange, type RangeRequest } from '../http/range.js'
import type { FileRecord } from '../metadata/file-store.js'
import type { RouteFamily } from './family.js'

export interface ContentRouteOptions {
  family: RouteFamily
}

export const CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"
const CACHE_CONTROL = 'private, no-cache'
const WHOLE: RangeRequest = { kind: 'none' }

function contentTypeOf (filename: string): string {
  return filename.toLowerCase().endsWith('.jsonl') ? 'application/jsonl' : 'application/octet-stream'
}

/** The file's representation headers, for the answers that carry the file (200, 206). */
function representationHeaders (record: FileRecord, validators: Validators): Record<string, string> {
  return {
    etag: validators.etag,
    'last-modified': new Date(validators.lastModified).toUTCString(),
    'cache-control': CACHE_CONTROL,
    'accept-ranges': 'bytes',
    'content-type': contentTypeOf(record.filename),
    'content-disposition': contentDisposition(record.filename)
  }
}

const optionalHeader = (description: string) => Type.Optional(Type.String({ description }))
const ContentHeadersSchema = Type.Object({
  range: optionalHeader('One range, e.g. `bytes=0-1023`; honoured on GET only.'),
  'if-range': optionalHeader('The ETag or Last-Modified of a partial copy: the Range is honoured only if it is still this file.'),
  'if-none-match': optionalHeader('ETags (a list, weak comparison, or `*`): 304 when one matches.'),
  'if-modified-since': optionalHeader('304 when the file is not newer; ignored with If-None-Match.'),
  'if-match': optionalHeader('ETags (a list, strong comparison, or `*`): 412 when none matches.'),
  'if-unmodified-since': optionalHeader('412 when the file is newer; ignored with If-Match.')
})
type ContentRequest = FastifyRequest<{ Params: FileIdParams, Headers: { range?: string, 'if-range'?: string } }>

/**
 * `GET /files/{id}/content`: the bytes streamed from storage, never buffered. The ETag
 * is the stored sha256, so it is strong and costs no storage round trip; HEAD and every
 * conditional answer come from the file's row alone and never open the object.
 */
export default async function contentRoute (app: FastifyInstance, options: ContentRouteOptions): Promise<void> {
  const { family } = options
  const binary = (description: string) => ({
    description,
    content: { 'application/octet-stream': { schema: Type.String({ format: 'binary' }) } }
  })
  // Without the TypeBox provider: the body is a stream, not a serialized schema.
  const schema = {
    operationId: family.operationId('downloadFile'),
    summary: 'Retrieve file content',
    description: 'The file\'s bytes, exactly as uploaded (never wrapped, in either family). A single `Range: bytes=` range is answered 206. Conditional requests follow RFC 9110.',
    tags: family.tags,
    params: FileIdParamsSchema,
    headers: ContentHeadersSchema,
    response: {
      200: binary('The whole file.'),
      206: binary('The requested range.'),
      304: { description: 'Not modified (If-None-Match or If-Modified-Since).', type: 'null' },
      401: family.error,
      404: family.error,
      412: family.error,
      416: family.error
    }
  }

  async function serveContent (request: ContentRequest, reply: FastifyReply): Promise<FastifyReply> {
    const record = await app.files.get(request.project, request.params.file_id)
    // The bytes are the uploader's: should a browser ever render them (an old one ignoring
    // nosniff, a user opening the URL), they run no script, load nothing and cannot be framed.
    reply.header('content-security-policy', CONTENT_SECURITY_POLICY)
    const validators: Validators = { etag: `"${record.sha256}"`, lastModified: record.createdAt * 1000 }
    const precondition = evaluatePreconditions(request.headers, validators)
    if (precondition.kind === 'failed') throw ERRORS.preconditionFailed(precondition.header)
    if (precondition.kind === 'not-modified') {
      // RFC 9110 §15.4.5: the validator and caching fields a 200 would have, no other metadata.
      return reply.code(304).headers({ etag: validators.etag, 'cache-control': CACHE_CONTROL }).send()
    }

    // Range is defined for GET alone (RFC 9110 §14.2): HEAD describes the whole file.
    const wanted = request.method === 'GET' && ifRangeHolds(request.headers['if-range'], validators)
      ? parseRange(request.headers.range, record.bytes)
      : WHOLE
    if (wanted.kind === 'unsatisfiable') {
      reply.header('content-range', `bytes */${record.bytes}`)
      throw ERRORS.rangeNotSatisfiable(record.bytes)
    }
    if (request.method === 'HEAD') {
      return reply.headers(representationHeaders(record, validators)).header('content-length', record.bytes).send()
    }
    const object = await app.blobStore.get(record.storageKey, wanted.kind === 'range' ? { range: wanted.range } : {})
      .catch((error: unknown) => { throw ERRORS.contentUnavailable(record.id, error) })
    reply.headers(representationHeaders(record, validators)).header('content-length', object.contentLength)
    // Counted once the whole body went out; a download cut short is not a download.
    reply.raw.once('finish', () => { app.metrics.recordDownload(object.contentLength) })
    if (wanted.kind === 'range') {
      reply.code(206).header('content-range', `bytes ${wanted.range.start}-${wanted.range.end}/${record.bytes}`)
    }
    return reply.send(object.body)
  }

  // HEAD is declared before GET, so Fastify does not add its own: that one runs the GET
  // handler and drains the object's stream (the whole file read for a HEAD).
  app.route({ method: 'HEAD', url: '/files/:file_id/content', schema: { ...schema, hide: true }, handler: serveContent })
  app.route({ method: 'GET', url: '/files/:file_id/content', schema, handler: serveContent })
}
