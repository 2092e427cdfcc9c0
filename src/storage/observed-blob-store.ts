import type { BlobStore } from './blob-store.js'

export type StorageOperation = 'put' | 'get' | 'head' | 'delete' | 'list' | 'abort_incomplete' | 'check'

/**
 * Wraps a driver so that each failed operation is reported (metrics), whoever called
 * it: the upload pipeline, the routes, the sweeper, reconciliation, readiness. A put
 * that fails because its caller aborted it (an invalid file, a client gone, shutdown)
 * is not a storage failure and is not reported.
 */
export function observeBlobStore (store: BlobStore, onError: (operation: StorageOperation, error: unknown) => void): BlobStore {
  async function observed<T> (operation: StorageOperation, run: () => Promise<T>, callerAborted?: AbortSignal): Promise<T> {
    try {
      return await run()
    } catch (error) {
      if (callerAborted?.aborted !== true) onError(operation, error)
      throw error
    }
  }
  return {
    driver: store.driver,
    put: async (key, body, options) => observed('put', async () => store.put(key, body, options), options?.signal),
    get: async (key, options) => observed('get', async () => store.get(key, options), options?.signal),
    head: async (key) => observed('head', async () => store.head(key)),
    delete: async (key) => observed('delete', async () => store.delete(key)),
    async * list (prefix) {
      try {
        yield * store.list(prefix)
      } catch (error) {
        onError('list', error)
        throw error
      }
    },
    abortIncomplete: async (olderThan, prefix) => observed('abort_incomplete', async () => store.abortIncomplete(olderThan, prefix)),
    check: async () => observed('check', async () => store.check()),
    close: async () => store.close()
  }
}
