import type { BatchError } from '../../schemas/batch-error.js'
import type { FileCheck } from './check-file.js'

/** What `files-api validate --json` prints; the help text documents each field. */
export interface ValidateReport {
  valid: boolean
  file: string
  bytes: number
  requests: number
  url: string | null
  models: Record<string, number>
  file_error: BatchError | null
  errors: BatchError[]
  error_count: number
  warnings: BatchError[]
  warning_count: number
}

/**
 * `errors` is what the server answers in `error.errors` (already capped by the
 * validator, like the server's), and `error_count` its `error.error_count`. A refusal
 * of the whole file is also the one entry of `errors`, so `valid` is exactly
 * `error_count === 0` whichever rule refused the file.
 */
export function toReport (file: string, check: FileCheck): ValidateReport {
  const { result, fileError } = check
  const errors = fileError !== null ? [fileError] : (result?.errors ?? [])
  const errorCount = fileError !== null ? 1 : (result?.errorCount ?? 0)
  return {
    valid: errorCount === 0,
    file,
    bytes: check.bytes,
    requests: result?.requests ?? 0,
    url: result?.url ?? null,
    models: result?.models ?? {},
    file_error: fileError,
    errors,
    error_count: errorCount,
    warnings: result?.warnings ?? [],
    warning_count: result?.warningCount ?? 0
  }
}

/** The text report: the verdict, the errors (each message names its line), then the summary. */
export function formatReport (report: ValidateReport): string {
  const out: string[] = []
  if (report.file_error !== null) {
    out.push(`${report.file}: invalid batch file, refused as a whole (${report.file_error.code})`)
    out.push(`  ${report.file_error.message}`)
    out.push('  Its lines were not checked: the server stops at this rule too.')
    out.push(`  bytes     ${report.bytes}`)
    return out.join('\n') + '\n'
  }
  if (report.valid) {
    out.push(`${report.file}: valid batch file`)
  } else {
    out.push(`${report.file}: invalid batch file, ${count(report.error_count, 'error')}`)
    for (const error of report.errors) out.push(`  ${error.message}`)
    out.push(...unlisted(report.errors.length, report.error_count, 'error'))
    out.push('')
  }
  const models = Object.entries(report.models).map(([model, n]) => `${model} (${n})`)
  out.push(`  requests  ${report.requests}`)
  out.push(`  url       ${report.url ?? 'none'}`)
  out.push(`  models    ${models.length === 0 ? 'none' : models.join(', ')}`)
  out.push(`  bytes     ${report.bytes}`)
  out.push(`  warnings  ${report.warning_count === 0 ? 'none' : report.warning_count}`)
  for (const warning of report.warnings) out.push(`    ${warning.message}`)
  out.push(...unlisted(report.warnings.length, report.warning_count, 'warning').map((line) => `  ${line}`))
  return out.join('\n') + '\n'
}

/** The validator lists the first 100 of each, as the server does; say so when more exist. */
function unlisted (listed: number, total: number, noun: string): string[] {
  return total > listed ? [`  (the first ${listed} of ${count(total, noun)} are listed)`] : []
}

function count (n: number, noun: string): string {
  return `${n} ${n === 1 ? noun : `${noun}s`}`
}
