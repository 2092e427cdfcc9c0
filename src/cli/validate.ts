import { parseArgs } from 'node:util'
import { batchValidatorOptions, ConfigError, loadConfig } from '../config.js'
import { checkBatchFile, FileReadError, type FileCheck } from './check-file.js'
import { ProgressLine } from './progress.js'
import { formatReport, toReport } from './report.js'

export const EXIT_VALID = 0
export const EXIT_INVALID = 1
export const EXIT_USAGE = 2

export interface CliOutput {
  write: (text: string) => unknown
  isTTY?: boolean
}

export interface CliIo {
  stdout: CliOutput
  stderr: CliOutput
  env: NodeJS.ProcessEnv
  /** Progress is shown for regular files larger than this (tests lower it). */
  progressMinBytes?: number
  /** Least time between two progress updates (tests set 0). */
  progressIntervalMs?: number
}

// A file this large takes a few seconds to read; below that a progress line only flickers.
const PROGRESS_MIN_BYTES = 50 * 1024 * 1024
// At most four redraws a second.
const PROGRESS_INTERVAL_MS = 250

export const VALIDATE_USAGE = `Usage: files-api validate FILE.jsonl [--json]

Checks an OpenAI Batch input file with the rules, limits and messages of the
server's upload (POST /v1/files with purpose "batch"), without uploading it. The
file is streamed, never loaded whole. The settings are the server's environment
variables: BATCH_MAX_REQUESTS, BATCH_MAX_LINE_BYTES, BATCH_MAX_FILE_BYTES,
BATCH_MODEL_POLICY, BATCH_ALLOWED_URLS (and MAX_FILE_BYTES, which bounds
BATCH_MAX_FILE_BYTES); the same environment gives the same verdict.

Options:
  --json      print one JSON object on stdout instead of the text report
  -h, --help  show this help

Exit status:
  0  the server would accept the file
  1  the server would refuse it (the report on stdout says why)
  2  the file could not be checked: usage error, bad setting, unreadable
     file (a message on stderr, nothing on stdout)

JSON output:
  {
    "valid":         true when the server would accept the file,
    "file":          the FILE argument as given,
    "bytes":         the file's size in bytes,
    "requests":      request lines (0 when file_error is set),
    "url":           the endpoint all lines target, or null,
    "models":        requests per body.model, e.g. {"gpt-4o-mini": 2},
    "file_error":    null, or the error that refused the whole file,
    "errors":        [{"code", "message", "param", "line"}, ...],
    "error_count":   the number of errors,
    "warnings":      [{"code", "message", "param", "line"}, ...],
    "warning_count": the number of warnings
  }
  errors and error_count are what the server answers in error.errors and
  error.error_count: the first 100 errors and the total. "line" is the 1-based
  physical line (blank lines count), or null for the file as a whole.
  file_error is set when the file is refused before its lines are checked, as
  the server refuses it; it is then also the only entry of errors:
    {"code": "file_too_large", "param": "file", "line": null, "message": ...}
        larger than BATCH_MAX_FILE_BYTES (the server answers 413)
    {"code": "invalid_file_format", "param": "file", "line": null, "message": ...}
        the name does not end in .jsonl
  So valid is false exactly when error_count > 0.
`

/** `files-api validate ARGS`; resolves to the exit status. */
export async function runValidate (argv: string[], io: CliIo): Promise<number> {
  let values: { json?: boolean, help?: boolean }
  let positionals: string[]
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true
    }))
  } catch (error) {
    return usageError(io, error instanceof Error ? error.message : String(error))
  }
  if (values.help === true) {
    io.stdout.write(VALIDATE_USAGE)
    return EXIT_VALID
  }
  const [file, ...extra] = positionals
  if (file === undefined) return usageError(io, 'missing the FILE to check.')
  if (extra.length > 0) return usageError(io, `expected one FILE, got ${positionals.length}.`)

  let check: FileCheck
  try {
    // Read at run time, like the server at start-up: never at import time.
    const config = loadConfig(io.env)
    check = await checkBatchFile(file, {
      validator: batchValidatorOptions(config),
      maxFileBytes: config.BATCH_MAX_FILE_BYTES,
      watch: (size) => io.stderr.isTTY === true && size > (io.progressMinBytes ?? PROGRESS_MIN_BYTES)
        ? new ProgressLine(io.stderr, size, { intervalMs: io.progressIntervalMs ?? PROGRESS_INTERVAL_MS })
        : undefined
    })
  } catch (error) {
    if (error instanceof ConfigError || error instanceof FileReadError) {
      io.stderr.write(`files-api validate: ${error.message}\n`)
      return EXIT_USAGE
    }
    throw error
  }
  const report = toReport(file, check)
  io.stdout.write(values.json === true ? `${JSON.stringify(report)}\n` : formatReport(report))
  return report.valid ? EXIT_VALID : EXIT_INVALID
}

function usageError (io: CliIo, message: string): number {
  io.stderr.write(`files-api validate: ${message}\nRun 'files-api validate --help' for usage.\n`)
  return EXIT_USAGE
}
