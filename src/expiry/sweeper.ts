import type { FileService, FileServiceLog } from '../files/file-service.js'
import type { UploadService } from '../uploads/upload-service.js'

export interface SweepDeps {
  files: FileService
  /** Pending uploads past their hour are expired and their parts removed (issue 13). */
  uploads?: Pick<UploadService, 'expireDue'>
  batchSize: number
  log: FileServiceLog
}

export interface SweepResult {
  deleted: number
  /** Objects whose removal failed; their rows are gone, reconciliation removes the orphans. */
  objectErrors: number
  /** Uploads expired (Uploads API), and their part objects whose removal failed (reconciliation removes them). */
  expiredUploads: number
  uploadPartErrors: number
}

/**
 * Deletes expired files in batches until none is left (FileService.deleteExpired: rows
 * first, each to one sweeper only, so replicas may sweep together); an expired file is
 * already invisible (404, absent from lists) before it is swept.
 */
export async function sweepExpired (deps: SweepDeps): Promise<SweepResult> {
  const result: SweepResult = { deleted: 0, objectErrors: 0, expiredUploads: 0, uploadPartErrors: 0 }
  for (;;) {
    const batch = await deps.files.deleteExpired(deps.batchSize)
    result.deleted += batch.deleted
    result.objectErrors += batch.objectErrors
    if (batch.deleted < deps.batchSize) break
  }
  if (deps.uploads !== undefined) {
    for (;;) {
      const batch = await deps.uploads.expireDue(deps.batchSize)
      result.expiredUploads += batch.expired
      result.uploadPartErrors += batch.partErrors
      if (batch.expired < deps.batchSize) break
    }
  }
  if (result.deleted > 0 || result.expiredUploads > 0) deps.log.info({ ...result }, 'expired files and uploads swept')
  return result
}
