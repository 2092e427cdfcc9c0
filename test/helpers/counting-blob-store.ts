import { Transform } from 'node:stream'
import type { BlobStore } from '../../src/storage/blob-store.js'

export interface BlobStoreCounts {
  get: number
  head: number
  /** Bytes that flowed out of the bodies `get` returned. */
  bytesRead: number
}

/**
 * Wraps a real driver and counts what is read from it, to prove which answers never
 * touch the object. Every call still goes to the real store; nothing is faked.
 */
export function countingBlobStore (store: BlobStore): { store: BlobStore, counts: BlobStoreCounts } {
  const counts: BlobStoreCounts = { get: 0, head: 0, bytesRead: 0 }
  const counted: BlobStore = {
    driver: store.driver,
    put: async (key, body, options) => store.put(key, body, options),
    async get (key, options) {
      counts.get += 1
      const result = await store.get(key, options)
      const meter = new Transform({
        transform (chunk: Buffer, _encoding, done) {
          counts.bytesRead += chunk.length
          done(null, chunk)
        }
      })
      result.body.on('error', (error) => meter.destroy(error))
      meter.on('close', () => { result.body.destroy() })
      return { ...result, body: result.body.pipe(meter) }
    },
    async head (key) {
      counts.head += 1
      return store.head(key)
    },
    delete: async (key) => store.delete(key),
    list: (prefix) => store.list(prefix),
    abortIncomplete: async (olderThan, prefix) => store.abortIncomplete(olderThan, prefix),
    check: async () => store.check(),
    close: async () => store.close()
  }
  return { store: counted, counts }
}
