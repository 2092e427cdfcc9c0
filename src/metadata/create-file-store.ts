import path from 'node:path'
import type { Config } from '../../schemas/config.js'
import type { FileStore } from './file-store.js'
import { createPostgresFileStore } from './postgres-file-store.js'
import { createSqliteFileStore } from './sqlite-file-store.js'

export type FileStoreConfig = Pick<Config, 'DATABASE_URL' | 'DATABASE_POOL_MAX' | 'SQLITE_PATH' | 'DATA_DIR'>

export interface CreateFileStoreOptions {
  /** Errors of idle PostgreSQL connections (see PostgresFileStoreOptions.onPoolError). */
  onPoolError?: (err: Error) => void
}

/**
 * The metadata store the settings ask for: PostgreSQL when DATABASE_URL is set (several
 * replicas share it), else the embedded SQLite file. Call `migrate()` before use.
 */
export async function createFileStore (config: FileStoreConfig, options: CreateFileStoreOptions = {}): Promise<FileStore> {
  if (config.DATABASE_URL !== undefined) {
    return await createPostgresFileStore({
      connectionString: config.DATABASE_URL,
      poolMax: config.DATABASE_POOL_MAX,
      onPoolError: options.onPoolError
    })
  }
  return await createSqliteFileStore({ filename: sqlitePath(config) })
}

/** Where the embedded default keeps its metadata (also the source of `files-api copy-metadata`). */
export function sqlitePath (config: Pick<Config, 'SQLITE_PATH' | 'DATA_DIR'>): string {
  return config.SQLITE_PATH ?? path.join(config.DATA_DIR, 'files.db')
}
