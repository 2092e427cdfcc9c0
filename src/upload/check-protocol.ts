/** The messages between check-pool.ts (the event loop) and check-worker.ts (a worker thread). */
import type { BatchValidationResult, BatchValidatorOptions } from '../jsonl/batch-validator.js'

export type ToWorker =
  /**
   * A new upload's check: `validator` null for no validation (the file cannot be a batch
   * file), `hash` false when another worker hashes the same bytes.
   */
  | { type: 'open', id: number, validator: BatchValidatorOptions | null, hash: boolean }
  /**
   * The next `length` bytes of the file, in a buffer the worker hands back: transferred
   * when one worker checks the upload, shared (a SharedArrayBuffer) when two do.
   */
  | { type: 'data', id: number, slice: number, buffer: ArrayBuffer | SharedArrayBuffer, length: number }
  /** The file can no longer be a batch file: stop validating, keep hashing. */
  | { type: 'drop', id: number }
  /** The file is complete: answer with the verdict and the hash. */
  | { type: 'end', id: number }
  /** The upload was abandoned: forget its check. */
  | { type: 'close', id: number }
  /** How many checks the worker holds (tests: an abandoned upload must leave none). */
  | { type: 'sessions', token: number }

export type FromWorker =
  /** `slice` as posted: a shared buffer arrives as a new object each time, so it cannot name itself. */
  | { type: 'ack', id: number, slice: number, buffer: ArrayBuffer | SharedArrayBuffer, errorCount: number }
  /** sha256 from the check that hashes, validation from the one that validates. */
  | { type: 'result', id: number, sha256?: string, validation?: BatchValidationResult }
  | { type: 'failed', id: number, message: string }
  | { type: 'sessions', token: number, count: number }
