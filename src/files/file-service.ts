import { createHash } from 'node:crypto'
import { pipeline, Transform, type Readable } from 'node:stream'
import { ERRORS } from '../errors.js'
import { isFileId } from '../ids.js'
import type { FileRecord, FileStore, ListFilesPage, ListFilesQuery, NewFileRecord } from '../metadata/file-store.js'
import type { BlobStore } from '../storage/blob-store.js'

export interface FileServiceLog {
  info: (obj: object, msg: string) => void
  warn: (obj: object, msg: string) => void
}

export interface FileServiceDeps {
  blobStore: BlobStore
  fileStore: FileStore
  /** Milliseconds since the epoch; injectable so expiry can be tested with a controlled clock. */
  now: () => number
  log: FileServiceLog
}

export interface SweepBatch {
  deleted: number
  /** Objects whose removal failed; their rows are gone, reconciliation removes the orphans. */
  objectErrors: number
}

/**
 * The one owner of file consistency between the blob store and the metadata store
 * (house style: routes, sweeper, reconciler and the batch engine go through it):
 * - an object is complete before its row exists, and a row that cannot be written takes
 *   its object with it;
 * - on delete the row goes first, so the file is gone for every reader at once; an
 *   object left behind is an orphan that reconciliation removes;
 * - every lookup is scoped to a project: another project's file does not exist.
 */
export interface FileService {
  /** The project's live file, or 404: the same 404 for a missing, expired or another project's file. */
  get: (project: string, id: string) => Promise<FileRecord>
  /**
   * The project's file, expired or not yet swept, and whether it has expired: for callers
   * that answer an expired file otherwise than a missing one (creating a batch: 400, not
   * 404). Null when missing or another project's.
   */
  find: (project: string, id: string) => Promise<{ record: FileRecord, expired: boolean } | null>
  /** A keyset page of the project's live files. */
  list: (query: Omit<ListFilesQuery, 'now'>) => Promise<ListFilesPage>
  /**
   * Makes a stored object a file: `file.storageKey` must name an object already complete.
   * The id is minted here, at commit, so ids are in commit order (FileStore.insertNext).
   */
  commit: (file: NewFileRecord) => Promise<FileRecord>
  /**
   * Stores `body` under `file.storageKey` (complete or not at all, BlobStore.put) and
   * commits it as a file, its bytes and sha256 counted on the way. If the body or the
   * store fails nothing is stored; if the row cannot be written the object is removed
   * (as `commit`). The batch engine's result files come this way.
   */
  commitStream: (file: Omit<NewFileRecord, 'bytes' | 'sha256'>, body: Readable, signal?: AbortSignal) => Promise<FileRecord>
  /** Deletes the project's live file (404 as `get`) and returns what was deleted. */
  delete: (project: string, id: string) => Promise<FileRecord>
  /** Deletes up to `limit` expired files of any project, rows first; safe on every replica at once. */
  deleteExpired: (limit: number) => Promise<SweepBatch>
}

export function createFileService (deps: FileServiceDeps): FileService {
  const { blobStore, fileStore, log } = deps
  const nowSeconds = (): number => Math.floor(deps.now() / 1000)

  async function removeObject (record: FileRecord, why: string): Promise<boolean> {
    try {
      await blobStore.delete(record.storageKey)
      return true
    } catch (error) {
      log.warn({ fileId: record.id, project: record.project, storageKey: record.storageKey, err: error }, why)
      return false
    }
  }

  async function get (project: string, id: string): Promise<FileRecord> {
    const record = isFileId(id) ? await fileStore.get(project, id, nowSeconds()) : null
    if (record === null) throw ERRORS.fileNotFound(id)
    return record
  }

  async function commit (file: NewFileRecord): Promise<FileRecord> {
    try {
      return await fileStore.insertNext(file)
    } catch (error) {
      // The object is complete but has no row: remove it, so nothing half-done remains.
      // Should the delete fail too (storage down as well), reconciliation removes the orphan.
      await blobStore.delete(file.storageKey).catch((deleteError: unknown) => {
        log.warn({ project: file.project, storageKey: file.storageKey, err: deleteError }, 'file not committed; its object could not be removed yet')
      })
      throw ERRORS.databaseUnavailable(error)
    }
  }

  return {
    get,

    async find (project, id) {
      if (!isFileId(id)) return null
      // The store leaves out files expired at the `now` it is given; at the epoch none is.
      const record = await fileStore.get(project, id, 0)
      if (record === null) return null
      return { record, expired: record.expiresAt !== null && record.expiresAt <= nowSeconds() }
    },

    async list (query) {
      return await fileStore.list({ ...query, now: nowSeconds() })
    },

    commit,

    async commitStream (file, body, signal) {
      const hash = createHash('sha256')
      const hashing = new Transform({
        transform (chunk: Buffer, _encoding, done) {
          hash.update(chunk)
          done(null, chunk)
        }
      })
      // pipeline, not pipe: a failing body fails the put (which then stores nothing), and a
      // failing put destroys the body too, so its source (open part objects) is released.
      const stored = pipeline(body, hashing, () => {})
      const { bytes } = await blobStore.put(file.storageKey, stored, signal === undefined ? undefined : { signal })
      return await commit({ ...file, bytes, sha256: hash.digest('hex') })
    },

    async delete (project, id) {
      const live = await get(project, id)
      const deleted = await fileStore.delete(project, live.id)
      // Deleted by someone else between the two statements: for this caller it is gone.
      if (deleted === null) throw ERRORS.fileNotFound(id)
      await removeObject(deleted, 'file deleted; its object could not be removed yet')
      return deleted
    },

    async deleteExpired (limit) {
      // One statement hands each expired row to one caller only (FileStore.deleteExpired),
      // so replicas sweeping at once never delete an object twice.
      const batch = await fileStore.deleteExpired(nowSeconds(), limit)
      const removed = await Promise.all(batch.map(async (record) => removeObject(record, 'expired file: row deleted, object removal failed')))
      return { deleted: batch.length, objectErrors: removed.filter((ok) => !ok).length }
    }
  }
}
