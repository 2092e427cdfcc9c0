import { sql, type Kysely, type Selectable } from 'kysely'
import { toNumber, toNumberOrNull, type Dialect, type Int8, type Int8Null, type TextNull } from '../batches/tables.js'
import type { Purpose } from '../../schemas/files.js'

/**
 * The rows of OpenAI uploads and their parts (migration 0009_uploads). Plain queries that
 * run unchanged on SQLite and PostgreSQL; the state machine they serve is in
 * upload-lifecycle.ts, the consistency with storage in upload-service.ts.
 */

export interface UploadsTable {
  id: string
  project: string
  filename: string
  purpose: string
  bytes: Int8
  mime_type: string
  /** UploadState: OpenAI's statuses, and `completing` while a completion reads the parts. */
  status: string
  created_at: Int8
  expires_at: Int8
  file_expires_after_seconds: Int8Null
  file_id: TextNull
}

export interface UploadPartsTable {
  id: string
  upload_id: string
  bytes: Int8
  created_at: Int8
  storage_key: string
}

export interface UploadDatabase {
  uploads: UploadsTable
  upload_parts: UploadPartsTable
}

/**
 * `completing` is not one of OpenAI's statuses (the object shows `pending`): it marks the
 * upload whose parts one completion is reading, so a second completion, a cancel or a new
 * part cannot change them meanwhile.
 */
export type UploadState = 'pending' | 'completing' | 'completed' | 'cancelled' | 'expired'

/** The state machine, in one place: which states each state may move to. */
export const UPLOAD_TRANSITIONS: Readonly<Record<UploadState, readonly UploadState[]>> = {
  pending: ['completing', 'cancelled', 'expired'],
  // Back to pending when the completion failed for a reason the client can fix or retry
  // (a storage error, a quota); cancelled when the content itself was refused.
  completing: ['completed', 'pending', 'cancelled', 'expired'],
  completed: [],
  cancelled: [],
  expired: []
}

const UPLOAD_TRANSITIONS_TO = Object.fromEntries((Object.keys(UPLOAD_TRANSITIONS) as UploadState[])
  .map((to) => [to, (Object.keys(UPLOAD_TRANSITIONS) as UploadState[]).filter((from) => UPLOAD_TRANSITIONS[from].includes(to))])) as Record<UploadState, UploadState[]>

export interface UploadRecord {
  id: string
  project: string
  filename: string
  purpose: Purpose
  bytes: number
  mimeType: string
  state: UploadState
  /** Unix seconds. */
  createdAt: number
  expiresAt: number
  /** The File's lifetime asked for at creation (expires_after.seconds), or null. */
  fileExpiresAfterSeconds: number | null
  fileId: string | null
}

export interface PartRecord {
  id: string
  uploadId: string
  bytes: number
  createdAt: number
  storageKey: string
}

function rowToUpload (row: Selectable<UploadsTable>): UploadRecord {
  return {
    id: row.id,
    project: row.project,
    filename: row.filename,
    // Only insertUpload writes these, from a Purpose and an UploadState.
    purpose: row.purpose as Purpose,
    bytes: toNumber(row.bytes),
    mimeType: row.mime_type,
    state: row.status as UploadState,
    createdAt: toNumber(row.created_at),
    expiresAt: toNumber(row.expires_at),
    fileExpiresAfterSeconds: toNumberOrNull(row.file_expires_after_seconds),
    fileId: row.file_id
  }
}

function rowToPart (row: Selectable<UploadPartsTable>): PartRecord {
  return { id: row.id, uploadId: row.upload_id, bytes: toNumber(row.bytes), createdAt: toNumber(row.created_at), storageKey: row.storage_key }
}

export interface UploadStore {
  insertUpload: (upload: UploadRecord) => Promise<void>
  /** The project's upload, or null (missing or another project's). */
  getUpload: (project: string, id: string) => Promise<UploadRecord | null>
  /** Uploads of `ids` of any project (reconciliation). */
  statesOf: (ids: readonly string[]) => Promise<Map<string, { state: UploadState, expiresAt: number }>>
  /**
   * Moves the upload to `to` in one statement, only from a state UPLOAD_TRANSITIONS allows
   * (and, with `liveAt`, only if not expired at that instant); the updated row, or null.
   */
  transition: (id: string, to: UploadState, options?: { liveAt?: number, fileId?: string }) => Promise<UploadRecord | null>
  /** Pending (or `completing`) uploads of the project not expired at `now`. */
  countLive: (project: string, now: number) => Promise<number>
  /**
   * Marks up to `limit` uploads expired, and returns them: pending ones whose expires_at
   * passed, and `completing` ones stuck past `stuckBefore` (a replica killed mid-completion).
   * Each is returned to one caller only.
   */
  expire: (now: number, stuckBefore: number, limit: number) => Promise<UploadRecord[]>
  /** Records a part whose object is complete, if its upload is still pending at `now`; false otherwise. */
  insertPart: (part: PartRecord, now: number) => Promise<boolean>
  parts: (uploadId: string) => Promise<PartRecord[]>
  /** How many parts the upload has, and their bytes. */
  partUsage: (uploadId: string) => Promise<{ count: number, bytes: number }>
  /** Deletes the parts' rows (all of the upload's, or only `ids`) and returns them, so their objects can be removed. */
  deleteParts: (uploadId: string, ids?: readonly string[]) => Promise<PartRecord[]>
  /** Which of `ids` have a row. */
  existingParts: (ids: readonly string[]) => Promise<Set<string>>
}

export function createUploadStore (db: Kysely<UploadDatabase>, dialect: Dialect): UploadStore {
  return {
    async insertUpload (upload) {
      await db.insertInto('uploads').values({
        id: upload.id,
        project: upload.project,
        filename: upload.filename,
        purpose: upload.purpose,
        bytes: upload.bytes,
        mime_type: upload.mimeType,
        status: upload.state,
        created_at: upload.createdAt,
        expires_at: upload.expiresAt,
        file_expires_after_seconds: upload.fileExpiresAfterSeconds,
        file_id: upload.fileId
      }).execute()
    },

    async getUpload (project, id) {
      const row = await db.selectFrom('uploads').selectAll().where('project', '=', project).where('id', '=', id).executeTakeFirst()
      return row === undefined ? null : rowToUpload(row)
    },

    async statesOf (ids) {
      if (ids.length === 0) return new Map()
      const rows = await db.selectFrom('uploads').select(['id', 'status', 'expires_at']).where('id', 'in', [...ids]).execute()
      return new Map(rows.map((row) => [row.id, { state: row.status as UploadState, expiresAt: toNumber(row.expires_at) }]))
    },

    async transition (id, to, options = {}) {
      const from = UPLOAD_TRANSITIONS_TO[to]
      if (from.length === 0) return null
      let update = db.updateTable('uploads').set({ status: to, ...(options.fileId === undefined ? {} : { file_id: options.fileId }) })
        .where('id', '=', id)
        .where('status', 'in', [...from])
      if (options.liveAt !== undefined) update = update.where('expires_at', '>', options.liveAt)
      const row = await update.returningAll().executeTakeFirst()
      return row === undefined ? null : rowToUpload(row)
    },

    async countLive (project, now) {
      const row = await db.selectFrom('uploads')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('project', '=', project)
        .where('status', 'in', ['pending', 'completing'])
        .where('expires_at', '>', now)
        .executeTakeFirstOrThrow()
      return toNumber(row.n)
    },

    async expire (now, stuckBefore, limit) {
      const due = db.selectFrom('uploads').select('id')
        .where((eb) => eb.or([
          eb.and([eb('status', '=', 'pending'), eb('expires_at', '<=', now)]),
          eb.and([eb('status', '=', 'completing'), eb('expires_at', '<=', stuckBefore)])
        ]))
        .orderBy('expires_at')
        .limit(limit)
      // The status condition again in the UPDATE: a completion or cancel that won meanwhile keeps its upload.
      const rows = await db.updateTable('uploads').set({ status: 'expired' })
        .where('id', 'in', due)
        .where((eb) => eb.or([
          eb.and([eb('status', '=', 'pending'), eb('expires_at', '<=', now)]),
          eb.and([eb('status', '=', 'completing'), eb('expires_at', '<=', stuckBefore)])
        ]))
        .returningAll()
        .execute()
      return rows.map(rowToUpload)
    },

    async insertPart (part, now) {
      // One statement: the part is recorded only while its upload takes parts, so a part
      // finishing after a cancel, a completion's start or the expiry is refused, not kept.
      // PostgreSQL: FOR SHARE, so an insert and a completion's move to `completing` are
      // ordered (the one waits for the other's commit, then sees it): a part recorded is
      // one the completion reads, or the insert sees `completing` and records nothing.
      // SQLite runs one writer at a time anyway.
      const result = await db.insertInto('upload_parts')
        .columns(['id', 'upload_id', 'bytes', 'created_at', 'storage_key'])
        .expression((eb) => {
          const live = eb.selectFrom('uploads')
            // Cast: PostgreSQL types a bare parameter in a select list as text.
            .select([
              sql<string>`cast(${part.id} as text)`.as('id'),
              sql<string>`cast(${part.uploadId} as text)`.as('upload_id'),
              sql<number>`cast(${part.bytes} as bigint)`.as('bytes'),
              sql<number>`cast(${part.createdAt} as bigint)`.as('created_at'),
              sql<string>`cast(${part.storageKey} as text)`.as('storage_key')
            ])
            .where('id', '=', part.uploadId)
            .where('status', '=', 'pending')
            .where('expires_at', '>', now)
          return dialect === 'postgres' ? live.forShare() : live
        })
        .executeTakeFirst()
      return Number(result.numInsertedOrUpdatedRows ?? 0) === 1
    },

    async parts (uploadId) {
      const rows = await db.selectFrom('upload_parts').selectAll().where('upload_id', '=', uploadId).orderBy('id').execute()
      return rows.map(rowToPart)
    },

    async partUsage (uploadId) {
      const row = await db.selectFrom('upload_parts')
        .select((eb) => [eb.fn.countAll<number | string>().as('n'), eb.fn.sum<number | string | null>('bytes').as('bytes')])
        .where('upload_id', '=', uploadId)
        .executeTakeFirstOrThrow()
      return { count: toNumber(row.n), bytes: row.bytes === null ? 0 : toNumber(row.bytes) }
    },

    async deleteParts (uploadId, ids) {
      if (ids !== undefined && ids.length === 0) return []
      let remove = db.deleteFrom('upload_parts').where('upload_id', '=', uploadId)
      if (ids !== undefined) remove = remove.where('id', 'in', [...ids])
      const rows = await remove.returningAll().execute()
      return rows.map(rowToPart)
    },

    async existingParts (ids) {
      if (ids.length === 0) return new Set()
      const rows = await db.selectFrom('upload_parts').select('id').where('id', 'in', [...ids]).execute()
      return new Set(rows.map((row) => row.id))
    }
  }
}
