import { ERRORS } from '../errors.js'
import type { FileStore } from '../metadata/file-store.js'

export interface ProjectQuota {
  /** Most live files per project; 0: unlimited. */
  maxFiles: number
  /** Most live bytes per project; 0: unlimited. */
  maxBytes: number
}

export interface QuotaGuard {
  readonly enabled: boolean
  /** Before the body is read: refuses a project that is already at a limit. */
  admit: (project: string) => Promise<void>
  /** Before the object is completed: refuses a file that does not fit. */
  fits: (project: string, bytes: number) => Promise<void>
}

/**
 * Per-project quotas, counted from the metadata store (live files only: expired ones
 * no longer count, even before the sweeper removed them). Uploads running at the same
 * time each see the usage without the others, so a project may overshoot by at most
 * the files it has in flight; a lock per project would serialize its uploads instead.
 */
export function createQuotaGuard (quota: ProjectQuota, deps: { fileStore: FileStore, now: () => number }): QuotaGuard {
  const enabled = quota.maxFiles > 0 || quota.maxBytes > 0
  const usage = async (project: string) => deps.fileStore.usage(project, Math.floor(deps.now() / 1000))
  return {
    enabled,
    async admit (project) {
      if (!enabled) return
      const used = await usage(project)
      if (quota.maxFiles > 0 && used.files >= quota.maxFiles) {
        throw ERRORS.quotaExceeded(`the project already has ${used.files} files, the most it may have is ${quota.maxFiles}.`)
      }
      if (quota.maxBytes > 0 && used.bytes >= quota.maxBytes) {
        throw ERRORS.quotaExceeded(`the project already stores ${used.bytes} bytes, the most it may store is ${quota.maxBytes}.`)
      }
    },
    async fits (project, bytes) {
      if (!enabled) return
      const used = await usage(project)
      if (quota.maxFiles > 0 && used.files + 1 > quota.maxFiles) {
        throw ERRORS.quotaExceeded(`the project already has ${used.files} files, the most it may have is ${quota.maxFiles}.`)
      }
      if (quota.maxBytes > 0 && used.bytes + bytes > quota.maxBytes) {
        throw ERRORS.quotaExceeded(`this file (${bytes} bytes) would bring the project to ${used.bytes + bytes} bytes, the most it may store is ${quota.maxBytes}.`)
      }
    }
  }
}
