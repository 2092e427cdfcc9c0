import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Test } from 'tap'
import { KEY_A, listBlobs, type TestServer } from '../../helpers/app.js'

/**
 * The contract between the client-matrix tests and the per-SDK programs (Node, Python,
 * Go): the inputs they get through the environment and the one JSON document each
 * prints. Every SDK drives the same lifecycle, so one set of exact assertions serves all.
 */

export const SAMPLE = new URL('../../fixtures/test_model.jsonl', import.meta.url).pathname
const WRONG_KEY = 'sk-wrong-key-0000000000000000'
/** Early refusals repeated per SDK: enough for a lost answer to show (issue 9 saw 5 of 10). */
export const REFUSAL_REPEATS = 20

export interface Inputs {
  sample: string
  big: string
  invalid: string
  sha256: { sample: string, big: string }
  bytes: { sample: number, big: number }
}

export interface SdkError {
  /** The SDK's error class (Go has one: `openai.Error`), or `connection` / what else was thrown. */
  class: string
  status: number | null
  code: string | null
  param: string | null
  message: string | null
  /** `error.errors[].line` of an invalid batch file. */
  lines: number[]
}

export interface LifecycleResult {
  sdk: string
  uploads: Array<{ name: string, via: 'sdk' | 'raw multipart', file: Record<string, unknown> }>
  retrieved: Array<Record<string, unknown>>
  list_asc: string[]
  list_desc: string[]
  pages_asc: number[]
  pages_desc: number[]
  contents: Array<{ id: string, bytes: number, sha256: string }>
  deleted: Array<Record<string, unknown>>
  list_after_delete: string[]
  errors: { wrong_key: SdkError, not_found: SdkError, deleted_again: SdkError, invalid_file: SdkError }
  refusals: { attempts: number, authentication: number, connection: number, other: string[] }
}

/** The uploads every program makes, in this order, and the filename each must end up with. */
export const UPLOADS = [
  { name: 'stream, file first', filename: 'test_model.jsonl', source: 'sample' },
  { name: 'stream, purpose first', filename: 'test_model.jsonl', source: 'sample' },
  { name: 'bytes, file first', filename: 'bytes-file-first.jsonl', source: 'sample' },
  { name: 'bytes, purpose first', filename: 'bytes-purpose-first.jsonl', source: 'sample' },
  { name: 'big stream', filename: 'big.jsonl', source: 'big' }
] as const

/** The invalid batch file's one faulty line is line 2 of 3; the 400 must name it. */
export const INVALID_MESSAGE = 'The batch file has 1 error. line 2: body.messages must be a non-empty array of messages, got an empty array.'

function requestLine (customId: string, content: string): string {
  return JSON.stringify({ custom_id: customId, method: 'POST', url: '/v1/chat/completions', body: { model: 'm', messages: [{ role: 'user', content }] } })
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex')

export async function writeInputs (t: Test): Promise<Inputs> {
  // Not t.testdir(): the server's DATA_DIR is that folder, and a second call empties it.
  const dir = await mkdtemp(path.join(tmpdir(), 'files-api-clients-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const big = path.join(dir, 'big.jsonl')
  const invalid = path.join(dir, 'invalid.jsonl')
  // About 1.3 MB, the size of the batch file with which issue 9 lost answers.
  const bigBytes = Buffer.from(Array.from({ length: 5600 }, (_, i) => requestLine(`req-${i}`, 'x'.repeat(160))).join('\n') + '\n')
  await writeFile(big, bigBytes)
  const empty = JSON.stringify({ custom_id: 'b', method: 'POST', url: '/v1/chat/completions', body: { model: 'm', messages: [] } })
  await writeFile(invalid, `${requestLine('a', 'hi')}\n${empty}\n${requestLine('c', 'hi')}\n`)
  const sample = await readFile(SAMPLE)
  return {
    sample: SAMPLE,
    big,
    invalid,
    sha256: { sample: sha256(sample), big: sha256(bigBytes) },
    bytes: { sample: sample.length, big: bigBytes.length }
  }
}

/** What a program reads from its environment. */
export function programEnv (server: TestServer, inputs: Inputs): Record<string, string> {
  return {
    FILES_API_BASE_URL: `${server.url}/v1`,
    FILES_API_KEY: KEY_A,
    FILES_API_WRONG_KEY: WRONG_KEY,
    FILES_API_SAMPLE: inputs.sample,
    FILES_API_BIG: inputs.big,
    FILES_API_INVALID: inputs.invalid,
    FILES_API_REPEATS: String(REFUSAL_REPEATS)
  }
}

/** Runs a program to its end; with `json` (the default) parses the one JSON document it prints. Its time in ms for the report. */
export async function runProgram (command: string, args: string[], env: Record<string, string>, cwd?: string): Promise<{ result: LifecycleResult, ms: number }>
export async function runProgram (command: string, args: string[], env: Record<string, string>, cwd: string, options: { json: false }): Promise<{ ms: number }>
export async function runProgram (command: string, args: string[], env: Record<string, string>, cwd?: string, options: { json: boolean } = { json: true }): Promise<{ result?: LifecycleResult, ms: number }> {
  const started = performance.now()
  const child = spawn(command, args, { env: { ...process.env, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk))
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk))
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', resolve)
  })
  const stdout = Buffer.concat(out).toString('utf8')
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${code}:\n${Buffer.concat(err).toString('utf8')}\n${stdout}`)
  const ms = Math.round(performance.now() - started)
  return options.json ? { result: JSON.parse(stdout) as LifecycleResult, ms } : { ms }
}

export interface ErrorClasses { authentication: string, notFound: string, badRequest: string }

/** Exact assertions on one SDK's lifecycle, then on what storage holds after it. */
export async function assertLifecycle (t: Test, result: LifecycleResult, inputs: Inputs, server: TestServer, classes: ErrorClasses): Promise<void> {
  t.same(result.uploads.map((upload) => upload.name), UPLOADS.map((upload) => upload.name), 'every upload ran, in order')
  const ids = result.uploads.map((upload) => upload.file.id as string)
  t.equal(new Set(ids).size, UPLOADS.length, 'every upload has an id of its own')
  UPLOADS.forEach((expected, i) => {
    const file = result.uploads[i]?.file ?? {}
    const createdAt = file.created_at as number
    t.match(file.id, /^file-[0-9A-HJKMNP-TV-Z]{26}$/, `${expected.name}: a file id`)
    t.ok(Number.isInteger(createdAt) && Math.abs(createdAt - Date.now() / 1000) < 600, `${expected.name}: created_at is now, in seconds`)
    t.same(file, {
      id: ids[i],
      object: 'file',
      bytes: inputs.bytes[expected.source],
      created_at: createdAt,
      expires_at: createdAt + server.config.BATCH_EXPIRES_AFTER_SECONDS,
      filename: expected.filename,
      purpose: 'batch',
      status: 'processed'
    }, `${expected.name}: the file object, exactly`)
  })
  t.same(result.retrieved, result.uploads.map((upload) => upload.file), 'retrieve answers each file object as created')
  // Sequential uploads: ascending id order is upload order.
  t.same(result.list_asc, ids, 'auto-pagination, oldest first: every file once, in order')
  t.same(result.list_desc, [...ids].reverse(), 'auto-pagination, newest first')
  t.same(result.pages_asc, [2, 2, 1], 'pages of 2: the SDK followed the cursor')
  t.same(result.pages_desc, [2, 2, 1])
  t.same(result.contents, UPLOADS.map((upload, i) => ({ id: ids[i], bytes: inputs.bytes[upload.source], sha256: inputs.sha256[upload.source] })),
    'every download is byte for byte the source')
  t.same(result.deleted, ids.map((id) => ({ id, object: 'file', deleted: true })))
  t.same(result.list_after_delete, [])

  const error = (cls: string, status: number, code: string, param: string | null, message: string, lines: number[] = []): SdkError =>
    ({ class: cls, status, code, param, message, lines })
  t.same(result.errors.wrong_key, error(classes.authentication, 401, 'invalid_api_key', null, 'Incorrect API key provided.'))
  t.same(result.errors.not_found, error(classes.notFound, 404, 'file_not_found', 'file_id', 'No such File object: file-01J00000000000000000000000'))
  t.same(result.errors.deleted_again, error(classes.notFound, 404, 'file_not_found', 'file_id', `No such File object: ${ids[0] ?? ''}`))
  t.same(result.errors.invalid_file, error(classes.badRequest, 400, 'invalid_batch_file', 'file', INVALID_MESSAGE, [2]))

  t.same(await listBlobs(server.dataDir), [], 'nothing left in storage: deleted, refused and invalid uploads alike')
}

/** Every early refusal reached the SDK as its typed 401, none as a connection error. */
export function assertRefusals (t: Test, result: LifecycleResult): void {
  t.same(result.refusals, { attempts: REFUSAL_REPEATS, authentication: REFUSAL_REPEATS, connection: 0, other: [] },
    `${result.sdk}: ${REFUSAL_REPEATS} uploads with a wrong key, retries off: each one saw its 401`)
}
