import type { UploadObject, UploadPartObject } from '../../schemas/uploads.js'
import type { FileRecord } from '../metadata/file-store.js'
import type { UploadService } from '../uploads/upload-service.js'
import type { PartRecord, UploadRecord } from '../uploads/upload-store.js'
import { toFileObject } from './family.js'

/** OpenAI's Upload object; `file` is the File completing it made, null before. */
export function toUploadObject (uploads: Pick<UploadService, 'statusOf'>, upload: UploadRecord, file: FileRecord | null = null): UploadObject {
  return {
    id: upload.id,
    object: 'upload',
    bytes: upload.bytes,
    created_at: upload.createdAt,
    expires_at: upload.expiresAt,
    filename: upload.filename,
    purpose: upload.purpose,
    status: uploads.statusOf(upload),
    file: file === null ? null : toFileObject(file)
  }
}

export function toPartObject (part: PartRecord): UploadPartObject {
  return { id: part.id, object: 'upload.part', created_at: part.createdAt, upload_id: part.uploadId }
}
