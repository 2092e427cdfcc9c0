import type { BatchError } from '../../schemas/batch-error.js'

/** How batch findings are worded: messages name the line and never echo megabytes of input. */

const SUMMARY_SHOWN = 5
const MAX_QUOTED = 60

/** OpenAI requires a `.jsonl` file for purpose `batch`; the extension is compared in any case. */
export function validateBatchFilename (filename: string): BatchError | null {
  if (filename.length > '.jsonl'.length && filename.toLowerCase().endsWith('.jsonl')) return null
  return {
    code: 'invalid_file_format',
    message: `The file ${quote(filename)} is not a batch file: its name must end in .jsonl (one JSON request per line).`,
    param: 'file',
    line: null
  }
}

/** One message for the whole file, for error responses that carry a single string. */
export function summarizeBatchErrors (result: { errors: readonly BatchError[], errorCount: number, requests: number }): string {
  const { errors, errorCount } = result
  if (errorCount === 0) return `The batch file is valid (${result.requests} ${plural(result.requests, 'request')}).`
  const shown = errors.slice(0, SUMMARY_SHOWN)
  const note = errorCount > shown.length ? `, first ${shown.length} shown` : ''
  return `The batch file has ${errorCount} ${plural(errorCount, 'error')}${note}. ${shown.map((e) => e.message).join(' ')}`
}

/** Names a wrong value for a message without echoing megabytes of user input. */
export function describe (value: unknown): string {
  if (typeof value === 'string') return value.length === 0 ? 'an empty string' : quote(value)
  if (value === null) return 'null'
  if (value === undefined) return 'no value'
  if (Array.isArray(value)) return value.length === 0 ? 'an empty array' : 'an array'
  if (typeof value === 'object') return 'an object'
  return `${typeof value} ${String(value)}`
}

export function quote (value: string): string {
  return JSON.stringify(truncate(value, MAX_QUOTED))
}

export function truncate (value: string, max: number): string {
  return value.length > max ? `${value.slice(0, max)}…` : value
}

function plural (count: number, noun: string): string {
  return count === 1 ? noun : `${noun}s`
}
