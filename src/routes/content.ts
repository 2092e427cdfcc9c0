import type { FastifyInstance } from 'fastify'
import Type from 'typebox'
import { FileIdParamsSchema, type FileIdParams } from '../../schemas/files.js'
import { ERRORS } from '../errors.js'
import { contentDisposition } from '../http/content-disposition.js'
import { parseRange } from '../http/range.js'
import type { RouteFamily } from './family.js'

export interface ContentRouteOptions {
  family: RouteFamily
}

export const CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"

function contentTypeOf (filename: string): string {
  return filename.toLowerCase().endsWith('.jsonl') ? 'application/jsonl' : 'application/octet-stream'
}

/**
 * `GET /files/{id}/content`: the bytes streamed from storage, never buffered. The ETag
 * is the stored sha256, so it is strong and costs no storage round trip.
 */
export default async function contentRoute (app: FastifyInstance, options: ContentRouteOptions): Promise<void> {
  const { family } = options
  const binary = (description: string) => ({
    description,
    content: { 'application/octet-stream': { schema: Type.String({ format: 'binary' }) } }
  })

  // Without the TypeBox provider: the body is a stream, not a serialized schema.
  app.get<{ Params: FileIdParams, Headers: { range?: string } }>('/files/:file_id/content', {
    schema: {
      operationId: family.operationId('downloadFile'),
      summary: 'Retrieve file content',
      description: 'The file\'s bytes, exactly as uploaded (never wrapped, in either family). A single `Range: bytes=` range is answered 206.',
      tags: family.tags,
      params: FileIdParamsSchema,
      headers: Type.Object({ range: Type.Optional(Type.String({ description: 'One range, e.g. `bytes=0-1023`.' })) }),
      response: {
        200: binary('The whole file.'),
        206: binary('The requested range.'),
        304: { description: 'Not modified (If-None-Match matched the ETag).', type: 'null' },
        401: family.error,
        404: family.error,
        416: family.error
      }
    }
  }, async (request, reply) => {
    const record = await app.files.get(request.project, request.params.file_id)
    const etag = `"${record.sha256}"`
    reply.header('etag', etag)
    reply.header('accept-ranges', 'bytes')
    reply.header('content-type', contentTypeOf(record.filename))
    reply.header('content-disposition', contentDisposition(record.filename))
    reply.header('cache-control', 'private, no-cache')
    // The bytes are the uploader's: should a browser ever render them (an old one ignoring
    // nosniff, a user opening the URL), they run no script, load nothing and cannot be framed.
    reply.header('content-security-policy', CONTENT_SECURITY_POLICY)
    if (request.headers['if-none-match'] === etag) return reply.code(304).send()

    // If-Range with another validator means the client's partial copy is stale: send it all.
    const ifRange = request.headers['if-range']
    const wanted = ifRange === undefined || ifRange === etag ? parseRange(request.headers.range, record.bytes) : { kind: 'none' as const }
    if (wanted.kind === 'unsatisfiable') {
      reply.header('content-range', `bytes */${record.bytes}`)
      throw ERRORS.rangeNotSatisfiable(record.bytes)
    }
    const object = await app.blobStore.get(record.storageKey, wanted.kind === 'range' ? { range: wanted.range } : {})
      .catch((error: unknown) => { throw ERRORS.contentUnavailable(record.id, error) })
    reply.header('content-length', object.contentLength)
    // Counted once the whole body went out; a download cut short is not a download.
    if (request.method === 'GET') reply.raw.once('finish', () => { app.metrics.recordDownload(object.contentLength) })
    if (wanted.kind === 'range') {
      reply.code(206).header('content-range', `bytes ${wanted.range.start}-${wanted.range.end}/${record.bytes}`)
    }
    return reply.send(object.body)
  })
}
