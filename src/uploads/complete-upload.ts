import { createHash, type Hash } from 'node:crypto'
import { Readable } from 'node:stream'
import { ERRORS } from '../errors.js'
import type { FileService } from '../files/file-service.js'
import type { FileRecord } from '../metadata/file-store.js'
import type { BlobStore } from '../storage/blob-store.js'
import type { UploadPart } from '../upload/form-fields.js'
import { storageError, uploadFile, type UploadDeps, type UploadLimits } from '../upload/upload-file.js'
import type { PartRecord, UploadRecord } from './upload-store.js'

export interface CompleteRequest {
  partIds: readonly string[]
  md5?: string
  signal?: AbortSignal
  /** The pipeline of `POST /files`, run over the parts (limits are the service's). */
  pipeline: Omit<UploadDeps, 'blobStore' | 'files' | 'limits' | 'beforeCommit'>
  /** The project's quota (QuotaGuard.fits), checked before the File is committed. */
  fits?: (project: string, bytes: number) => Promise<void>
}

export interface CompleteDeps {
  /** The upload's recorded parts (any order). */
  parts: readonly PartRecord[]
  blobStore: BlobStore
  files: FileService
  limits: UploadLimits
}

/**
 * Makes the File of a completed upload: the listed parts, read in order as one stream,
 * go through the very pipeline of `POST /files` (src/upload/upload-file.ts), as a form
 * with the purpose first and the assembled bytes as its file. So a batch file is
 * validated with the same rules, limits, codes and line numbers as a direct upload of
 * the same bytes, stored through the same put (complete or not at all) and committed
 * through the file service; a refusal leaves no object and no row. The byte count and
 * the md5 are checked on the same pass, before the commit.
 */
export async function completeUpload (upload: UploadRecord, request: CompleteRequest, deps: CompleteDeps): Promise<FileRecord> {
  const byId = new Map(deps.parts.map((part) => [part.id, part]))
  const ordered = request.partIds.map((id) => {
    const part = byId.get(id)
    if (part === undefined) throw ERRORS.partNotFound(id, upload.id)
    return part
  })
  const total = ordered.reduce((sum, part) => sum + part.bytes, 0)
  if (total !== upload.bytes) throw ERRORS.uploadBytesMismatch(upload.bytes, total)
  const md5 = createHash('md5')
  const form: UploadPart[] = [{ type: 'field', fieldname: 'purpose', value: upload.purpose }]
  if (upload.fileExpiresAfterSeconds !== null) {
    form.push({ type: 'field', fieldname: 'expires_after[anchor]', value: 'created_at' },
      { type: 'field', fieldname: 'expires_after[seconds]', value: String(upload.fileExpiresAfterSeconds) })
  }
  form.push({
    type: 'file',
    fieldname: 'file',
    filename: upload.filename,
    mimetype: upload.mimeType,
    file: Readable.from(partsInOrder(ordered, deps.blobStore, md5, request.signal), { objectMode: false })
  })
  return await uploadFile(toIterable(form), { project: upload.project, ...(request.signal === undefined ? {} : { signal: request.signal }) }, {
    ...request.pipeline,
    blobStore: deps.blobStore,
    files: deps.files,
    limits: deps.limits,
    async beforeCommit (file) {
      // The pipeline read the whole stream by now: the hash has seen every byte.
      if (file.bytes !== upload.bytes) throw ERRORS.uploadBytesMismatch(upload.bytes, file.bytes)
      if (request.md5 !== undefined && md5.digest('hex') !== request.md5.trim().toLowerCase()) throw ERRORS.md5Mismatch()
      if (request.fits !== undefined) await request.fits(file.project, file.bytes)
    }
  })
}

async function * toIterable<T> (items: readonly T[]): AsyncGenerator<T> {
  yield * items
}

/**
 * The parts' bytes, one after the other, each read as it is reached: one part's read in
 * flight at a time, nothing buffered beyond the streams' own buffers. Storage failures are
 * answered as such (the pipeline takes any other error for a malformed request).
 */
async function * partsInOrder (parts: readonly PartRecord[], blobStore: BlobStore, md5: Hash, signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
  for (const part of parts) {
    let read = 0
    try {
      const { body } = await blobStore.get(part.storageKey, signal === undefined ? {} : { signal })
      for await (const chunk of body as AsyncIterable<Buffer>) {
        read += chunk.length
        md5.update(chunk)
        yield chunk
      }
    } catch (error) {
      throw storageError(error)
    }
    if (read !== part.bytes) throw ERRORS.internal(new Error(`part ${part.id} holds ${read} bytes, its row says ${part.bytes}`))
  }
}
