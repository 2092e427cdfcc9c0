// The Files lifecycle driven by the official openai Node SDK, run as a program of its own
// (test/clients/node-sdk.test.ts spawns it) so that client and server share no event loop,
// as with a real user. Reads its inputs from the environment, prints one JSON document
// (the contract is test/clients/helpers/lifecycle.ts). It lives under helpers/ only so
// that tap does not run it as a test.
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import OpenAI, { toFile } from 'openai'
import { VERSION } from 'openai/version'
import type { LifecycleResult, SdkError } from './lifecycle.js'

function env (name: string): string {
  const value = process.env[name]
  if (value === undefined || value === '') throw new Error(`${name} is not set`)
  return value
}

const baseURL = env('FILES_API_BASE_URL')
const samplePath = env('FILES_API_SAMPLE')
const bigPath = env('FILES_API_BIG')
const repeats = Number(env('FILES_API_REPEATS'))
// Retries off: a lost answer must show as the connection error it is, not be hidden by a
// second attempt that re-sends the whole file.
const client = new OpenAI({ apiKey: env('FILES_API_KEY'), baseURL, maxRetries: 0 })
const wrongClient = new OpenAI({ apiKey: env('FILES_API_WRONG_KEY'), baseURL, maxRetries: 0 })

const ERROR_CLASSES = [OpenAI.BadRequestError, OpenAI.AuthenticationError, OpenAI.NotFoundError, OpenAI.APIConnectionError] as const

function describe (error: unknown): SdkError {
  const known = ERROR_CLASSES.find((cls) => error instanceof cls)
  if (!(error instanceof OpenAI.APIError)) return { class: String(error), status: null, code: null, param: null, message: null, lines: [] }
  const body = error.error as { message?: string, errors?: Array<{ line: number }> } | undefined
  return {
    class: known === OpenAI.APIConnectionError ? 'connection' : (known?.name ?? error.constructor.name),
    status: error.status ?? null,
    code: error.code ?? null,
    param: error.param ?? null,
    message: body?.message ?? null,
    lines: (body?.errors ?? []).map((entry) => entry.line)
  }
}

async function failure (promise: Promise<unknown>): Promise<SdkError> {
  try {
    await promise
  } catch (error) {
    return describe(error)
  }
  throw new Error('expected the call to fail')
}

async function listIds (order: 'asc' | 'desc'): Promise<{ ids: string[], pages: number[] }> {
  const ids: string[] = []
  for await (const file of client.files.list({ limit: 2, order })) ids.push(file.id)
  const pages: number[] = []
  for await (const page of (await client.files.list({ limit: 2, order })).iterPages()) pages.push(page.data.length)
  return { ids, pages }
}

async function main (): Promise<LifecycleResult> {
  const sample = await readFile(samplePath)
  // The SDK writes the form's fields in the order of the object's keys: both orders are the SDK's own.
  const uploads: LifecycleResult['uploads'] = [
    { name: 'stream, file first', via: 'sdk', file: { ...await client.files.create({ file: createReadStream(samplePath), purpose: 'batch' }) } },
    { name: 'stream, purpose first', via: 'sdk', file: { ...await client.files.create({ purpose: 'batch', file: createReadStream(samplePath) }) } },
    { name: 'bytes, file first', via: 'sdk', file: { ...await client.files.create({ file: await toFile(sample, 'bytes-file-first.jsonl'), purpose: 'batch' }) } },
    { name: 'bytes, purpose first', via: 'sdk', file: { ...await client.files.create({ purpose: 'batch', file: await toFile(sample, 'bytes-purpose-first.jsonl') }) } },
    { name: 'big stream', via: 'sdk', file: { ...await client.files.create({ file: createReadStream(bigPath), purpose: 'batch' }) } }
  ]
  const ids = uploads.map((upload) => String(upload.file.id))
  const retrieved = []
  for (const id of ids) retrieved.push({ ...await client.files.retrieve(id) })
  const asc = await listIds('asc')
  const desc = await listIds('desc')
  const contents = []
  for (const id of ids) {
    const bytes = Buffer.from(await (await client.files.content(id)).arrayBuffer())
    contents.push({ id, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') })
  }
  const errors = {
    wrong_key: await failure(wrongClient.files.retrieve(ids[0] ?? '')),
    not_found: await failure(client.files.retrieve('file-01J00000000000000000000000')),
    invalid_file: await failure(client.files.create({ file: createReadStream(env('FILES_API_INVALID')), purpose: 'batch' }))
  }
  const deleted = []
  for (const id of ids) deleted.push({ ...await client.files.delete(id) })
  const deletedAgain = await failure(client.files.delete(ids[0] ?? ''))
  const afterDelete: string[] = []
  for await (const file of client.files.list({ limit: 2 })) afterDelete.push(file.id)

  const refusals = { attempts: repeats, authentication: 0, connection: 0, other: [] as string[] }
  for (let i = 0; i < repeats; i++) {
    const seen = await failure(wrongClient.files.create({ file: createReadStream(bigPath), purpose: 'batch' }))
    if (seen.class === 'AuthenticationError' && seen.status === 401) refusals.authentication++
    else if (seen.class === 'connection') refusals.connection++
    else refusals.other.push(`${seen.class} ${seen.status ?? ''}`)
  }

  return {
    sdk: `openai-node ${VERSION}`,
    uploads,
    retrieved,
    list_asc: asc.ids,
    list_desc: desc.ids,
    pages_asc: asc.pages,
    pages_desc: desc.pages,
    contents,
    deleted,
    list_after_delete: afterDelete,
    errors: { ...errors, deleted_again: deletedAgain },
    refusals
  }
}

process.stdout.write(JSON.stringify(await main()) + '\n')
