#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { runCopyMetadata } from './cli/copy-metadata.js'
import { runReconcile } from './cli/reconcile.js'
import { EXIT_USAGE, runValidate } from './cli/validate.js'
import { packageVersion } from './version.js'

const USAGE = `Usage: files-api <command> [options]

Commands:
  validate FILE.jsonl [--json]  check a Batch input file as the server's upload
                                would, without uploading it
  reconcile [--dry-run]         remove orphan objects, dangling rows and
                                unfinished uploads (what a crash leaves)
  copy-metadata --to URL        copy the embedded SQLite metadata into
                                PostgreSQL (the move to replicas)

Options:
  -h, --help     show this help ('files-api validate --help' for the command)
  -v, --version  print the version
`

async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  const io = { stdout: process.stdout, stderr: process.stderr, env: process.env }
  if (command === 'validate') return runValidate(rest, io)
  if (command === 'reconcile') return runReconcile(rest, io)
  if (command === 'copy-metadata') return runCopyMetadata(rest, io)
  let values: { help?: boolean, version?: boolean }
  try {
    ({ values } = parseArgs({ args: argv, options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } }, allowPositionals: true }))
  } catch (error) {
    return usageError(error instanceof Error ? error.message : String(error))
  }
  if (values.help === true) process.stdout.write(USAGE)
  else if (values.version === true) process.stdout.write(`${packageVersion()}\n`)
  else return usageError(command === undefined ? 'missing a command.' : `unknown command ${JSON.stringify(command)}.`)
  return 0
}

function usageError (message: string): number {
  process.stderr.write(`files-api: ${message}\n${USAGE}`)
  return EXIT_USAGE
}

// exitCode, not process.exit(): a piped stdout is flushed before the process ends.
// An unexpected failure exits 2 as well, never 1, which scripts read as "invalid file".
process.exitCode = await main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`files-api: unexpected failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  return EXIT_USAGE
})
