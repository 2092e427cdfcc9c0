import type { Buffer } from 'node:buffer'
import { createHash } from 'node:crypto'
import { BatchValidator, type BatchValidatorOptions } from '../jsonl/batch-validator.js'
import type { CheckResult, UploadCheck } from './check-pool.js'

/**
 * The check on the event loop, as it always ran: for UPLOAD_WORKER_THREADS=0, for files
 * too small to be worth a worker's round trips, and when no worker runs.
 */
export function inlineCheck (validator: BatchValidatorOptions | null): UploadCheck {
  let batch = validator === null ? undefined : new BatchValidator(validator)
  const hash = createHash('sha256')
  return {
    get errorCount () { return batch?.errorCount ?? 0 },
    write (chunk: Buffer) {
      hash.update(chunk)
      batch?.write(chunk)
      return undefined
    },
    dropValidator () { batch = undefined },
    async end (): Promise<CheckResult> {
      const validation = batch?.end()
      const sha256 = hash.digest('hex')
      return validation === undefined ? { sha256 } : { sha256, validation }
    },
    close () {}
  }
}
