import type { FastifyReply } from 'fastify'
import { ERRORS } from '../errors.js'
import type { UploadSlots } from '../upload/upload-slots.js'

/**
 * What every route that receives or assembles a file body shares (`POST /files`, an
 * upload's parts and its completion): an abort on shutdown or past UPLOAD_MAX_DURATION_MS,
 * and one of the replica's upload slots.
 */
export interface UploadAbort {
  signal: AbortSignal
  dispose: () => void
}

export function abortOnShutdownOrDeadline (shutdownSignal: AbortSignal, maxMs: number | undefined): UploadAbort {
  // One controller per upload: listeners on the app-wide shutdown signal would pile up.
  const abort = new AbortController()
  const onShutdown = (): void => { abort.abort(shutdownSignal.reason) }
  shutdownSignal.addEventListener('abort', onShutdown, { once: true })
  if (shutdownSignal.aborted) onShutdown()
  const deadline = maxMs === undefined ? undefined : setTimeout(() => { abort.abort(ERRORS.uploadTooSlow(maxMs)) }, maxMs)
  return {
    signal: abort.signal,
    dispose: () => {
      clearTimeout(deadline)
      shutdownSignal.removeEventListener('abort', onShutdown)
    }
  }
}

/** A slot, or the 503 with Retry-After: the uploads in flight are what memory is sized for. */
export function acquireUploadSlot (slots: UploadSlots, reply: FastifyReply, retryAfterSeconds: number): () => void {
  const release = slots.tryAcquire()
  if (release === null) {
    reply.header('retry-after', String(retryAfterSeconds))
    throw ERRORS.tooManyUploads(slots.max, retryAfterSeconds)
  }
  return release
}
