import { ApiError } from '../errors.js'

/**
 * How an upload ended, for metrics and logs. Derived from the pipeline's result or
 * error by the route, so the pipeline itself reports nothing and knows no metrics.
 */
export const UPLOAD_OUTCOMES = ['stored', 'invalid', 'too_large', 'quota_exceeded', 'aborted', 'storage_error', 'busy', 'other'] as const
export type UploadOutcome = typeof UPLOAD_OUTCOMES[number]

/**
 * The outcome of a refused upload. `aborted` wins: once the client went away or the
 * server gave up on the upload, whatever error the pipeline saw is a consequence of it.
 */
export function refusedUploadOutcome (error: unknown, aborted: boolean): UploadOutcome {
  if (aborted) return 'aborted'
  if (!(error instanceof ApiError)) return 'other'
  switch (error.code) {
    case 'file_too_large': return 'too_large'
    case 'quota_exceeded': return 'quota_exceeded'
    case 'too_many_concurrent_uploads': return 'busy'
    case 'storage_unavailable':
    case 'storage_timeout':
    case 'insufficient_storage': return 'storage_error'
    default: return error.statusCode === 400 || error.statusCode === 415 ? 'invalid' : 'other'
  }
}
