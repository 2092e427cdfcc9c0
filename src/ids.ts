import { monotonicFactory } from 'ulid'
import { FILE_ID_PATTERN } from '../schemas/files.js'

const FILE_ID = new RegExp(FILE_ID_PATTERN)

/**
 * File ids are `file-` + a ULID: lexical order is creation order, which keyset
 * pagination relies on. The monotonic factory keeps ids created in the same
 * millisecond by this process strictly increasing.
 */
export function createFileIdFactory (now: () => number = Date.now): () => string {
  const ulid = monotonicFactory()
  return () => `file-${ulid(now())}`
}

export function isFileId (value: string): boolean {
  return FILE_ID.test(value)
}

/** The default STORAGE_PREFIX: every object key of the service starts with it. */
export const DEFAULT_STORAGE_PREFIX = 'files/'

/** Object key of a file: from the project and the id, never from the client's filename. */
export function objectKeyFor (project: string, fileId: string, prefix: string = DEFAULT_STORAGE_PREFIX): string {
  return `${prefix}${project}/${fileId}`
}
