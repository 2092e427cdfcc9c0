import { parseArgs } from 'node:util'
import { blobStoreOptions, ConfigError, describeDeployment, loadConfig } from '../config.js'
import { createFileStore } from '../metadata/create-file-store.js'
import type { FileStore } from '../metadata/file-store.js'
import { ensureDeploymentIdentity } from '../reconcile/deployment.js'
import { LOG_SAMPLE_KEYS, reconcile } from '../reconcile/reconcile.js'
import type { BlobStore } from '../storage/blob-store.js'
import { createBlobStore } from '../storage/create-blob-store.js'
import { EXIT_USAGE, type CliIo } from './validate.js'

export const RECONCILE_USAGE = `Usage: files-api reconcile [--dry-run] [--yes] [--grace-ms N] [--json]

Repairs storage and metadata with the server's own settings (DATA_DIR,
STORAGE_DRIVER, S3_*, STORAGE_PREFIX, DATABASE_URL, SQLITE_PATH,
RECONCILE_GRACE_MS, RECONCILE_MAX_REMOVALS): removes objects under
STORAGE_PREFIX that have no row (orphans), rows whose object is missing
(dangling), and unfinished writes under the prefix (fs temp files, S3 multipart
uploads). Only what is older than the grace period is touched, so uploads in
flight are safe; the service also runs this at start-up and every
RECONCILE_INTERVAL_MS. When storage or the database looks empty or foreign
while the other holds files, or the run would remove more than
RECONCILE_MAX_REMOVALS, it repairs nothing and exits 3 until --yes.

Options:
  --dry-run     report what would be repaired, change nothing
  --yes         repair even what looks unsafe (after checking the report)
  --grace-ms N  override RECONCILE_GRACE_MS
  --json        print the result as one JSON object
  -h, --help    show this help

Exit status: 0 done (repairs or not), 2 usage error, bad setting, an
unreachable store or a database and store of different deployments (message
on stderr), 3 refused as unsafe (nothing changed; rerun with --yes), 4 another
replica is reconciling.
`

const EXIT_REFUSED = 3
const EXIT_LOCKED = 4

/** `files-api reconcile ARGS`; resolves to the exit status. */
export async function runReconcile (argv: string[], io: CliIo): Promise<number> {
  let values: { 'dry-run'?: boolean, yes?: boolean, 'grace-ms'?: string, json?: boolean, help?: boolean }
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { 'dry-run': { type: 'boolean' }, yes: { type: 'boolean' }, 'grace-ms': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
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
  const log = { info: say, warn: say, error: say }
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
    await ensureDeploymentIdentity({ fileStore, blobStore, prefix: config.STORAGE_PREFIX, ...describeDeployment(config) })
    const graceMs = graceText === undefined ? config.RECONCILE_GRACE_MS : Number(graceText)
    if (graceMs <= config.UPLOAD_MAX_DURATION_MS && values.json !== true) {
      io.stderr.write(`files-api reconcile: warning: a grace of ${graceMs} ms does not exceed UPLOAD_MAX_DURATION_MS (${config.UPLOAD_MAX_DURATION_MS}): uploads running now on a server may be aborted\n`)
    }
    const locked = await fileStore.withReconcileLock(async () => reconcile({
      fileStore,
      blobStore,
      now: Date.now,
      graceMs,
      prefix: config.STORAGE_PREFIX,
      maxRemovals: config.RECONCILE_MAX_REMOVALS,
      dryRun: values['dry-run'] === true,
      confirmed: values.yes === true,
      log
    }))
    if (locked === null) return failureWith(io, 'another replica is reconciling now; try again later', EXIT_LOCKED)
    const result = locked.value
    const refused = result.refused !== null && values.yes !== true
    if (values.json === true) {
      io.stdout.write(`${JSON.stringify({ dry_run: values['dry-run'] === true, ...result })}\n`)
    } else {
      const verb = values['dry-run'] === true || refused ? 'would remove' : 'removed'
      const sample = (keys: string[]): string => keys.length > 0 ? ` (${keys.slice(0, LOG_SAMPLE_KEYS).join(', ')}${keys.length > LOG_SAMPLE_KEYS ? ', …' : ''})` : ''
      io.stdout.write([
        `scanned ${result.scannedObjects} objects and ${result.scannedRows} rows (${result.matched} matched)`,
        `orphan objects ${verb}: ${result.orphanObjects.length}${sample(result.orphanObjects)}`,
        `dangling rows ${verb}: ${result.danglingRows.length}${sample(result.danglingRows)}`,
        `unfinished writes removed: ${result.incompleteWrites === null ? (refused || values['dry-run'] === true ? 'none (not swept)' : 'not listable on this store') : result.incompleteWrites}`,
        `parts of uploads no upload needs ${verb}: ${result.staleUploadParts ?? 'none (not looked at)'}`,
        ...(refused ? [`REFUSED, nothing changed: ${result.refused?.message ?? ''}; rerun with --yes once checked`] : [])
      ].join('\n') + '\n')
    }
    return refused ? EXIT_REFUSED : 0
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
  return failureWith(io, message, EXIT_USAGE)
}

function failureWith (io: CliIo, message: string, code: number): number {
  io.stderr.write(`files-api reconcile: ${message}\n`)
  return code
}
