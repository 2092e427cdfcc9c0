import { deepStrictEqual } from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import { BatchValidator, DEFAULT_BATCH_URLS, type BatchValidationResult, type BatchValidatorOptions } from '../../../src/jsonl/batch-validator.js'
import { ReferenceValidator } from './reference-validator.js'

/** Shared by the equivalence tests: the scanning validator against the JSON.parse reference. */

export function options (overrides: Partial<BatchValidatorOptions> = {}): BatchValidatorOptions {
  return { maxRequests: 50000, maxLineBytes: 1024 * 1024, allowedUrls: DEFAULT_BATCH_URLS, modelPolicy: 'warn', ...overrides }
}

function run (validator: { write: (chunk: Buffer) => void, end: () => BatchValidationResult }, chunks: readonly Buffer[]): BatchValidationResult {
  for (const chunk of chunks) validator.write(chunk)
  return validator.end()
}

/**
 * Both validators over the same bytes (the same chunks): the whole result must be equal,
 * messages and model counts included. Thrown, so fast-check can shrink a failing input.
 */
export function assertSameVerdict (input: Buffer | string | readonly Buffer[], opts: BatchValidatorOptions = options()): BatchValidationResult {
  const chunks = typeof input === 'string' ? [Buffer.from(input)] : Buffer.isBuffer(input) ? [input] : input
  const got = run(new BatchValidator(opts), chunks)
  const want = run(new ReferenceValidator(opts), chunks)
  deepStrictEqual(got, want)
  return got
}
