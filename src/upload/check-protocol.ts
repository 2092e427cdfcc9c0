/** The messages between check-pool.ts (the event loop) and check-worker.ts (a worker thread). */
import type { BatchValidationResult, BatchValidatorOptions } from '../jsonl/batch-validator.js'

export type ToWorker =
  /** A new upload's check; `validator` null: hash only (the file cannot be a batch file). */
  | { type: 'open', id: number, validator: BatchValidatorOptions | null }
  /** The next `length` bytes of the file, in a transferred buffer the worker hands back. */
  | { type: 'data', id: number, buffer: ArrayBuffer, length: number }
  /** The file can no longer be a batch file: stop validating, keep hashing. */
  | { type: 'drop', id: number }
  /** The file is complete: answer with the verdict and the hash. */
  | { type: 'end', id: number }
  /** The upload was abandoned: forget its check. */
  | { type: 'close', id: number }
  /** How many checks the worker holds (tests: an abandoned upload must leave none). */
  | { type: 'sessions', token: number }

export type FromWorker =
  | { type: 'ack', id: number, buffer: ArrayBuffer, errorCount: number }
  | { type: 'result', id: number, sha256: string, validation?: BatchValidationResult }
  | { type: 'failed', id: number, message: string }
  | { type: 'sessions', token: number, count: number }
