import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import { DEFAULT_BATCH_URLS, type BatchValidatorOptions } from '../../src/jsonl/batch-validator.js'
import { createFileService } from '../../src/files/file-service.js'
import { createSqliteFileStore } from '../../src/metadata/sqlite-file-store.js'
import { createFsBlobStore } from '../../src/storage/fs-blob-store.js'
import { uploadFile, type UploadDeps } from '../../src/upload/upload-file.js'
import type { UploadPart } from '../../src/upload/form-fields.js'
import { KEY_A, objectKeyOf, startServer } from '../helpers/app.js'
import { postMultipart } from '../helpers/multipart.js'

/** Issue #9 item 7: a file whose purpose is known not to be batch is never validated. */

const MB = 1000 * 1000
// Two lines of 10 MB each that are no JSON at all: nested brackets, which JSON.parse holds at ~28 bytes a byte.
const notJsonl = Buffer.concat([Buffer.alloc(10 * MB, '['), Buffer.from('\n'), Buffer.alloc(10 * MB, '{'), Buffer.from('\n')])

t.test('over a real socket: a user_data file of 10 MB lines of invalid JSON is stored byte for byte, in either field order', async (t) => {
  const server = await startServer(t, { MAX_FILE_BYTES: String(64 * MB), BATCH_MAX_FILE_BYTES: String(32 * MB) })
  for (const order of ['purpose first', 'file first']) {
    const parts = [{ name: 'purpose', value: 'user_data' }, { name: 'file', filename: 'data.jsonl', content: notJsonl }]
    const res = await postMultipart(`${server.url}/v1/files`, order === 'purpose first' ? parts : parts.reverse(), { key: KEY_A })
    t.equal(res.status, 200, order)
    t.equal(res.json().bytes, notJsonl.length)
    t.ok((await readFile(path.join(server.dataDir, 'blobs', await objectKeyOf(server.app, res.json().id)))).equals(notJsonl), `${order}: stored byte for byte`)
  }
})

/**
 * The pipeline itself, with real fs storage and real SQLite. The validator's options are
 * the one thing it is handed: its constructor reads them, so a Proxy that counts the reads
 * tells whether a validator was ever made (no component can report it otherwise).
 */
async function pipeline (t: Test, limits: UploadDeps['limits']): Promise<{ deps: UploadDeps, made: () => number, root: string }> {
  const root = t.testdir({})
  const blobStore = await createFsBlobStore({ root: path.join(root, 'blobs') })
  const fileStore = await createSqliteFileStore({ filename: path.join(root, 'files.db') })
  await fileStore.migrate()
  t.teardown(async () => { await fileStore.close(); await blobStore.close() })
  let reads = 0
  const options: BatchValidatorOptions = { maxRequests: 50000, maxLineBytes: 6 * 1024 * 1024, allowedUrls: DEFAULT_BATCH_URLS, modelPolicy: 'warn' }
  const validator = new Proxy(options, { get: (target, key, receiver) => { if (key === 'maxRequests') reads++; return Reflect.get(target, key, receiver) } })
  const files = createFileService({ blobStore, fileStore, now: Date.now, log: { info: () => {}, warn: () => {} } })
  const deps: UploadDeps = { blobStore, files, limits, validator, batchExpiresAfterSeconds: 0, now: Date.now }
  return { deps, made: () => reads, root }
}

async function * parts (purpose: string, content: Buffer, purposeFirst: boolean): AsyncGenerator<UploadPart> {
  const field: UploadPart = { type: 'field', fieldname: 'purpose', value: purpose }
  // 64 KiB pieces, as busboy hands them over.
  const pieces = Array.from({ length: Math.ceil(content.length / 65536) }, (_, i) => content.subarray(i * 65536, (i + 1) * 65536))
  const file: UploadPart = { type: 'file', fieldname: 'file', filename: 'data.jsonl', mimetype: 'application/jsonl', file: Readable.from(pieces) }
  if (purposeFirst) yield field
  yield file
  if (!purposeFirst) yield field
}

t.test('purpose first and not batch: no validator is made; file first: one is, until the purpose is known', async (t) => {
  const { deps, made, root } = await pipeline(t, { maxFileBytes: 64 * MB, batchMaxFileBytes: 32 * MB })
  const first = await uploadFile(parts('user_data', notJsonl, true), { project: 'p' }, deps)
  t.equal(first.bytes, notJsonl.length)
  t.equal(made(), 0, 'purpose first: never validated')
  t.ok((await readFile(path.join(root, 'blobs', first.storageKey))).equals(notJsonl))
  const second = await uploadFile(parts('user_data', notJsonl, false), { project: 'p' }, deps)
  t.equal(second.bytes, notJsonl.length)
  t.equal(made(), 1, 'file first: it could have been a batch file')
  await t.rejects(uploadFile(parts('batch', Buffer.from('not json\n'), true), { project: 'p' }, deps), { code: 'invalid_batch_file' })
  t.equal(made(), 2, 'purpose batch: validated as before')
  t.equal((await readdir(path.join(root, 'blobs', 'files', 'p'))).length, 2)
})

t.test('file first and past BATCH_MAX_FILE_BYTES: stored as user_data, 413 as batch', async (t) => {
  const limit = 8 * MB
  const { deps } = await pipeline(t, { maxFileBytes: 64 * MB, batchMaxFileBytes: limit })
  t.equal((await uploadFile(parts('user_data', notJsonl, false), { project: 'p' }, deps)).bytes, notJsonl.length)
  await t.rejects(uploadFile(parts('batch', notJsonl, false), { project: 'p' }, deps), {
    code: 'file_too_large',
    message: `File is too large: the limit for purpose 'batch' is ${limit} bytes (7.63 MiB).`
  })
})
