import type { BatchError } from '../../schemas/batch-error.js'
import type { FilePurpose } from '../../schemas/files.js'
import type { Kysely } from 'kysely'
import type { BatchDatabase, Dialect } from '../batches/tables.js'
import type { UploadDatabase } from '../uploads/upload-store.js'

/** One stored file's metadata: the row behind a file object. */
export interface FileRecord {
  id: string
  project: string
  filename: string
  purpose: FilePurpose
  bytes: number
  /** Unix seconds. */
  createdAt: number
  /** Unix seconds, or null when the file never expires. */
  expiresAt: number | null
  /** Number of requests (lines) for validated batch files, else null. */
  requestCount: number | null
  /** Hex sha256 of the stored bytes. */
  sha256: string
  /** Where the bytes live in the blob store. */
  storageKey: string
  /** Non-fatal validation findings returned with the file. */
  warnings: BatchError[]
}

/** A file's row before it is committed: its id is minted by FileStore.insertNext. */
export type NewFileRecord = Omit<FileRecord, 'id'>

export interface ListFilesQuery {
  project: string
  /** Only files with this purpose. */
  purpose?: string
  /** Keyset cursor: return files strictly after this id in `order`. */
  after?: string
  limit: number
  order: 'asc' | 'desc'
  /** Unix seconds: files whose expiresAt <= now are left out. */
  now: number
}

export interface ListFilesPage {
  files: FileRecord[]
  hasMore: boolean
}

/**
 * Metadata store: SQLite (embedded default) and PostgreSQL implement it.
 * Every read is scoped to a project; a file of another project does not exist.
 */
export interface FileStore {
  readonly dialect: Dialect
  /**
   * The batch engine's tables in the same database (migration 0003 and later): the queue
   * shares the files' connection pool and transactions' isolation.
   */
  readonly batchDb: Kysely<BatchDatabase>
  /** The tables of OpenAI uploads and their parts (migration 0008), on the same pool. */
  readonly uploadDb: Kysely<UploadDatabase>
  /** Creates tables and indexes; safe to call on every start. */
  migrate (): Promise<void>
  /** Inserts a row under the id it already has (copies, tests); uploads use insertNext. */
  insert (record: FileRecord): Promise<void>
  /**
   * Commits a new file: mints an id greater than every id in the store and inserts the
   * row, in one transaction serialised with every other insertNext (of any replica), so
   * ids are in commit order: once a reader sees an id, no smaller one can appear later,
   * and keyset pages in either order never skip a file (issue 9, item 6).
   */
  insertNext (record: NewFileRecord): Promise<FileRecord>
  /** The file, or null when missing, of another project, or expired at `now`. */
  get (project: string, id: string, now: number): Promise<FileRecord | null>
  list (query: ListFilesQuery): Promise<ListFilesPage>
  /** Deletes the row; returns the deleted record, or null when there was none. */
  delete (project: string, id: string): Promise<FileRecord | null>
  /**
   * Deletes up to `limit` rows whose expiresAt <= now, of any project, and returns them
   * so their objects can be removed. A row is returned to one caller only, however many
   * replicas sweep at once.
   */
  deleteExpired (now: number, limit: number): Promise<FileRecord[]>
  /** Every row of every project, expired or not, in id order after `afterId` (reconciliation). */
  scan (afterId: string | undefined, limit: number): Promise<FileRecord[]>
  /**
   * Every row, expired or not, in bytewise storage_key order after `afterKey`: one side
   * of reconciliation's merge join with the blob store's listing (same order as S3's).
   */
  scanByStorageKey (afterKey: string | undefined, limit: number): Promise<FileRecord[]>
  /** The deployment id recorded at the first start, or null (a database never started). */
  readDeploymentId (): Promise<string | null>
  /** Records `id` unless one is recorded already; returns the one recorded (a racing replica's wins). */
  recordDeploymentId (id: string): Promise<string>
  /**
   * Runs `fn` unless another process (PostgreSQL: any replica, by advisory lock) or
   * another caller in this process (SQLite: one node) runs it: then resolves to null.
   */
  withReconcileLock<T> (fn: () => Promise<T>): Promise<{ value: T } | null>
  /** Which of `storageKeys` have a row (of any project, expired or not). */
  existingKeys (storageKeys: readonly string[]): Promise<Set<string>>
  /** Live files of `project` at `now` (unix seconds; expired ones excluded) and their total bytes (quotas). */
  usage (project: string, now: number): Promise<{ files: number, bytes: number }>
  /** Throws when the database is unreachable (readiness). */
  check (): Promise<void>
  close (): Promise<void>
}
