import { execFile } from 'node:child_process'
import { mkdir, utimes, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { listBlobs } from '../helpers/app.js'

const run = promisify(execFile)
const root = new URL('../..', import.meta.url).pathname

async function cli (args: string[], env: Record<string, string>): Promise<{ code: number, stdout: string, stderr: string }> {
  return run(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env } })
    .then(({ stdout, stderr }) => ({ code: 0, stdout, stderr }), (e: { code: number, stdout: string, stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }))
}

t.test('files-api reconcile repairs an fs data dir with the server\'s settings', async (t) => {
  const dataDir = t.testdir({})
  const orphan = path.join(dataDir, 'blobs', 'files', 'p', 'file-01J0000000000000000000ORPH')
  await mkdir(path.dirname(orphan), { recursive: true })
  await writeFile(orphan, 'orphan')
  const old = new Date(Date.now() - 10_000)
  await utimes(orphan, old, old)

  // One orphan and no row at all: that looks like a fresh database beside an existing
  // store, so every run refuses (exit 3, nothing changed) until --yes.
  const dry = await cli(['reconcile', '--dry-run', '--grace-ms', '0', '--json'], { DATA_DIR: dataDir })
  t.equal(dry.code, 3, dry.stderr)
  const report = JSON.parse(dry.stdout)
  t.same({ dry: report.dry_run, orphans: report.orphanObjects, rows: report.danglingRows, reason: report.refused?.reason },
    { dry: true, orphans: ['files/p/file-01J0000000000000000000ORPH'], rows: [], reason: 'database_empty' })
  t.same(await listBlobs(dataDir), ['files/p/file-01J0000000000000000000ORPH:6'], 'a dry run changes nothing')

  const young = await cli(['reconcile'], { DATA_DIR: dataDir })
  t.equal(young.code, 0)
  t.match(young.stdout, /orphan objects removed: 0/, 'the default grace (2 hours) protects a 10 s old object')

  const refused = await cli(['reconcile', '--grace-ms', '1000'], { DATA_DIR: dataDir })
  t.equal(refused.code, 3, refused.stderr)
  t.match(refused.stdout, /REFUSED, nothing changed: the database holds no file while the storage holds 1 objects; rerun with --yes/)
  t.same(await listBlobs(dataDir), ['files/p/file-01J0000000000000000000ORPH:6'], 'a refusal changes nothing')

  const real = await cli(['reconcile', '--grace-ms', '1000', '--yes'], { DATA_DIR: dataDir })
  t.equal(real.code, 0, real.stderr)
  t.match(real.stdout, /orphan objects removed: 1 \(files\/p\/file-01J0000000000000000000ORPH\)/)
  t.same(await listBlobs(dataDir), [])

  const bad = await cli(['reconcile', '--grace-ms', 'soon'], { DATA_DIR: dataDir })
  t.equal(bad.code, 2)
  t.match(bad.stderr, /--grace-ms takes a whole number/)
  const badEnv = await cli(['reconcile'], { DATA_DIR: dataDir, STORAGE_DRIVER: 'gcs' })
  t.equal(badEnv.code, 2)
  t.match(badEnv.stderr, /STORAGE_DRIVER="gcs": must be one of fs, s3/)
  const unreachable = await cli(['reconcile'], { DATA_DIR: dataDir, STORAGE_DRIVER: 's3', S3_BUCKET: 'b', S3_ENDPOINT: 'http://127.0.0.1:1', S3_ACCESS_KEY_ID: 'id', S3_SECRET_ACCESS_KEY: 'very-secret-value' })
  t.equal(unreachable.code, 2)
  t.match(unreachable.stderr, /S3 bucket "b" at http:\/\/127\.0\.0\.1:1 is not reachable/)
  t.notMatch(unreachable.stderr, /very-secret-value/, 'the secret never appears')
})
