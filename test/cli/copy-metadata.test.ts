import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import BetterSqlite3 from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import t, { type Test } from 'tap'
import { COPIED_TABLES, UNCOPIED_TABLES } from '../../src/metadata/copy-metadata.js'
import type { FileRecord, FileStore } from '../../src/metadata/file-store.js'
import { migrateToLatest } from '../../src/metadata/migrations.js'
import { createPostgresFileStore } from '../../src/metadata/postgres-file-store.js'
import { createSqliteFileStore } from '../../src/metadata/sqlite-file-store.js'
import { KEY_A, startServer } from '../helpers/app.js'
import { getJson, postMultipart } from '../helpers/multipart.js'
import { freshDatabase, NO_POSTGRES_REASON, testDatabaseUrl, withClient } from '../helpers/postgres.js'
import { line } from './helpers/invalid-file.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const serverUrl = testDatabaseUrl()

interface Run { code: number | null, stdout: string, stderr: string }

/** The real binary in its own process; the environment is exactly PATH plus `env`. */
async function cli (args: string[], env: Record<string, string>): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (text: string) => { stdout += text })
  child.stderr.setEncoding('utf8').on('data', (text: string) => { stderr += text })
  const code = await new Promise<number | null>((resolve, reject) => { child.on('error', reject); child.on('close', resolve) })
  return { code, stdout, stderr }
}

async function allRows (store: FileStore): Promise<FileRecord[]> {
  const out: FileRecord[] = []
  for (let page = await store.scan(undefined, 2); page.length > 0; page = await store.scan(page[page.length - 1]?.id, 2)) out.push(...page)
  return out
}

async function openSqlite (t: Test, dataDir: string): Promise<FileStore> {
  const store = await createSqliteFileStore({ filename: path.join(dataDir, 'files.db') })
  t.teardown(() => store.close())
  await store.migrate()
  return store
}

async function openPostgres (t: Test, url: string): Promise<FileStore> {
  const store = await createPostgresFileStore({ connectionString: url, poolMax: 2 })
  t.teardown(() => store.close())
  return store
}

function extra (id: string, overrides: Partial<FileRecord>): FileRecord {
  return { id, project: 'project-b', filename: 'x.jsonl', purpose: 'batch', bytes: 3, createdAt: 1_700_000_000, expiresAt: null, requestCount: 1, sha256: 'a'.repeat(64), storageKey: `files/project-b/${id}`, warnings: [], ...overrides }
}

t.test('every migrated table is copied (a new table must join COPIED_TABLES)', async (t) => {
  const sqlite = new BetterSqlite3(':memory:')
  const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: sqlite }) })
  t.teardown(() => db.destroy())
  await migrateToLatest(db)
  const tables = (await db.introspection.getTables()).map((table) => table.name).filter((name) => !name.startsWith('files_api_migration'))
  t.strictSame(tables.sort(), [...COPIED_TABLES.map((table) => table.name), ...UNCOPIED_TABLES].sort())
})

t.test('usage errors exit 2 and never print the password', async (t) => {
  const dataDir = t.testdir({})
  const missing = await cli(['copy-metadata'], { DATA_DIR: dataDir })
  t.equal(missing.code, 2)
  t.match(missing.stderr, /--to postgres:\/\/… is required/)
  const noSource = await cli(['copy-metadata', '--to', 'postgres://u:hunter2-secret@127.0.0.1:1/db'], { DATA_DIR: dataDir })
  t.equal(noSource.code, 2)
  t.match(noSource.stderr, /no SQLite database at .*files\.db/)
  t.notMatch(noSource.stderr + noSource.stdout, /hunter2/)
  await openSqlite(t, dataDir)
  const unreachable = await cli(['copy-metadata', '--to', 'postgres://u:hunter2-secret@127.0.0.1:1/db'], { DATA_DIR: dataDir })
  t.equal(unreachable.code, 2)
  t.match(unreachable.stderr, /postgres:\/\/u@127\.0\.0\.1:1\/db/)
  t.notMatch(unreachable.stderr + unreachable.stdout, /hunter2/)
  const badArg = await cli(['copy-metadata', '--to', 'postgres://u:hunter2-secret@h/db', '--bogus=hunter2-secret'], { DATA_DIR: dataDir })
  t.equal(badArg.code, 2)
  t.notMatch(badArg.stderr, /hunter2/)
})

if (serverUrl === undefined) {
  t.test('copy-metadata into PostgreSQL', { skip: NO_POSTGRES_REASON }, async () => {})
} else {
  t.test('copy-metadata moves an embedded deployment to PostgreSQL and keeps every file', { timeout: 240_000 }, async (t) => {
    // Not t.testdir(): startServer's own t.testdir() call would empty it, blobs included.
    const dataDir = await mkdtemp(path.join(tmpdir(), 'files-api-copy-'))
    t.teardown(() => rm(dataDir, { recursive: true, force: true }))
    const env = { DATA_DIR: dataDir }
    const password = new URL(serverUrl).password

    // Real uploads through the app: a plain file and a batch file with warnings.
    const before = await startServer(t, env)
    const plain = await postMultipart(`${before.url}/v1/files`, [{ name: 'purpose', value: 'user_data' }, { name: 'file', filename: 'notes.txt', content: Buffer.from('the bytes\n') }], { key: KEY_A })
    t.equal(plain.status, 200, plain.body)
    const batchBytes = Buffer.from([line('1', {}, 'a'), line('2', {}, 'b')].join('\n'))
    const batch = await postMultipart(`${before.url}/v1/files`, [{ name: 'purpose', value: 'batch' }, { name: 'file', filename: 'batch.jsonl', content: batchBytes }], { key: KEY_A })
    t.equal(batch.status, 200, batch.body)
    t.equal(batch.json().warnings.length, 1)
    await before.app.close()

    const sqlite = await openSqlite(t, dataDir)
    await sqlite.insert(extra('file-00EXPIRED0000000000000000', { expiresAt: 1_700_000_100 }))
    await sqlite.insert(extra('file-00LARGE00000000000000000', { bytes: 5 * 1024 ** 3, requestCount: null, purpose: 'user_data', warnings: [{ code: 'model_mismatch', message: 'm', param: 'body.model', line: 7 }] }))
    const source = await allRows(sqlite)
    t.equal(source.length, 4)

    const url = await freshDatabase(t, serverUrl)
    const first = await cli(['copy-metadata', '--to', url], env)
    t.equal(first.code, 0, first.stderr)
    t.match(first.stdout, /files: 4 rows in the source; copied 4, already present 0, conflicts 0, target rows not in the source 0/)
    t.notMatch(first.stdout + first.stderr, password.length > 0 ? password : /(?!)/, 'the password is never printed')
    const pgStore = await openPostgres(t, url)
    t.strictSame(await allRows(pgStore), source, 'every row, every field, expired ones too')

    const again = await cli(['copy-metadata', '--to', url, '--json'], env)
    t.equal(again.code, 0, again.stderr)
    t.match(JSON.parse(again.stdout).tables, [{ table: 'files', sourceRows: 4, copied: 0, alreadyPresent: 4, conflicts: 0, foreignRows: 0 }])

    // A conflict and a new source row: nothing is written, not even the new row.
    await sqlite.insert(extra('file-00NEW0000000000000000000', {}))
    await withClient(url, async (c) => { await c.query("update files set filename = 'changed.txt' where id = 'file-00LARGE00000000000000000'") })
    const conflict = await cli(['copy-metadata', '--to', url], env)
    t.equal(conflict.code, 1)
    t.match(conflict.stdout, /conflicts 1/)
    t.match(conflict.stdout, /conflicting files rows \(same key, other content\): file-00LARGE00000000000000000/)
    t.match(conflict.stdout, /nothing was written/)
    const after = await allRows(pgStore)
    t.equal(after.length, 4, 'the new row was not copied')
    t.equal(after.find((r) => r.id === 'file-00LARGE00000000000000000')?.filename, 'changed.txt', 'the conflicting row is untouched')

    // A target of another deployment (rows the source lacks) is refused as well.
    const foreignUrl = await freshDatabase(t, serverUrl)
    const foreign = await openPostgres(t, foreignUrl)
    await foreign.migrate()
    await foreign.insert(extra('file-00OTHER00000000000000000', {}))
    const refused = await cli(['copy-metadata', '--to', foreignUrl], env)
    t.equal(refused.code, 1)
    t.match(refused.stdout, /target rows not in the source 1/)
    t.equal((await allRows(foreign)).length, 1)

    // The app on PostgreSQL and the same storage serves the copied file.
    await withClient(url, async (c) => { await c.query("update files set filename = 'x.jsonl' where id = 'file-00LARGE00000000000000000'") })
    const moved = await startServer(t, { ...env, DATABASE_URL: url, LOG_LEVEL: 'error' })
    const content = await getJson(`${moved.url}/v1/files/${String(batch.json().id)}/content`, KEY_A)
    t.equal(content.status, 200, content.body)
    t.equal(content.body, batchBytes.toString(), 'the bytes are identical')
    const retrieved = await getJson(`${moved.url}/v1/files/${String(plain.json().id)}`, KEY_A)
    t.strictSame(retrieved.json(), plain.json())
  })
}
