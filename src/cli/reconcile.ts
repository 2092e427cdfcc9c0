import { parseArgs } from 'node:util'
import { blobStoreOptions, ConfigError, loadConfig } from '../config.js'
import { createFileStore } from '../metadata/create-file-store.js'
import type { FileStore } from '../metadata/file-store.js'
import { reconcile } from '../reconcile/reconcile.js'
import type { BlobStore } from '../storage/blob-store.js'
import { createBlobStore } from '../storage/create-blob-store.js'
import { EXIT_USAGE, type CliIo } from './validate.js'

export const RECONCILE_USAGE = `Usage: files-api reconcile [--dry-run] [--grace-ms N] [--json]

Repairs storage and metadata with the server's own settings (DATA_DIR,
STORAGE_DRIVER, S3_*, DATABASE_URL, SQLITE_PATH, RECONCILE_GRACE_MS): removes
objects that have no row (orphans), rows whose object is missing (dangling),
and unfinished writes (fs temp files, S3 multipart uploads). Only what is older
than the grace period is touched, so uploads in flight are safe; the service
also runs this at start-up and every RECONCILE_INTERVAL_MS.

Options:
  --dry-run     report what would be repaired, change nothing
  --grace-ms N  override RECONCILE_GRACE_MS
  --json        print the result as one JSON object
  -h, --help    show this help

Exit status: 0 done (repairs or not), 2 usage error, bad setting or an
unreachable store (message on stderr).
`

/** `files-api reconcile ARGS`; resolves to the exit status. */
export async function runReconcile (argv: string[], io: CliIo): Promise<number> {
  let values: { 'dry-run'?: boolean, 'grace-ms'?: string, json?: boolean, help?: boolean }
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { 'dry-run': { type: 'boolean' }, 'grace-ms': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true
    }))
  } catch (error) {
    return usageError(io, error instanceof Error ? error.message : String(error))
  }
  if (values.help === true) {
    io.stdout.write(RECONCILE_USAGE)
    return 0
  }
  const graceText = values['grace-ms']
  if (graceText !== undefined && !/^\d+$/.test(graceText)) return usageError(io, '--grace-ms takes a whole number of milliseconds.')

  let config
  try {
    config = loadConfig(io.env)
  } catch (error) {
    if (error instanceof ConfigError) return usageError(io, error.message)
    throw error
  }
  // Progress lines go to stderr; with --json stdout carries only the result.
  const say = (_obj: object, msg: string): void => { if (values.json !== true) io.stderr.write(`${msg}\n`) }
  const log = { info: say, warn: say }
  let blobStore: BlobStore
  let fileStore: FileStore
  try {
    blobStore = await createBlobStore(blobStoreOptions(config))
  } catch (error) {
    return failure(io, `cannot open the storage: ${error instanceof Error ? error.message : String(error)}`)
  }
  try {
    fileStore = await createFileStore(config)
  } catch (error) {
    await blobStore.close()
    return failure(io, `cannot open the database: ${error instanceof Error ? error.message : String(error)}`)
  }
  try {
    await blobStore.check()
    await fileStore.migrate()
    const result = await reconcile({
      fileStore,
      blobStore,
      now: Date.now,
      graceMs: graceText === undefined ? config.RECONCILE_GRACE_MS : Number(graceText),
      dryRun: values['dry-run'] === true,
      log
    })
    if (values.json === true) {
      io.stdout.write(`${JSON.stringify({ dry_run: values['dry-run'] === true, ...result })}\n`)
    } else {
      const verb = values['dry-run'] === true ? 'would remove' : 'removed'
      io.stdout.write([
        `scanned ${result.scannedObjects} objects and ${result.scannedRows} rows`,
        `orphan objects ${verb}: ${result.orphanObjects.length}${result.orphanObjects.length > 0 ? ` (${result.orphanObjects.join(', ')})` : ''}`,
        `dangling rows ${verb}: ${result.danglingRows.length}${result.danglingRows.length > 0 ? ` (${result.danglingRows.join(', ')})` : ''}`,
        `unfinished writes removed: ${result.incompleteWrites === null ? 'not listable on this store' : result.incompleteWrites}`
      ].join('\n') + '\n')
    }
    return 0
  } catch (error) {
    return failure(io, error instanceof Error ? error.message : String(error))
  } finally {
    await fileStore.close()
    await blobStore.close()
  }
}

function usageError (io: CliIo, message: string): number {
  io.stderr.write(`files-api reconcile: ${message}\nRun 'files-api reconcile --help' for usage.\n`)
  return EXIT_USAGE
}

function failure (io: CliIo, message: string): number {
  io.stderr.write(`files-api reconcile: ${message}\n`)
  return EXIT_USAGE
}
