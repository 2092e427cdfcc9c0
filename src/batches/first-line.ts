import { Buffer } from 'node:buffer'
import { LineSplitter } from '../jsonl/line-splitter.js'
import type { BlobStore } from '../storage/blob-store.js'

/** What creating a batch needs to know of its input file: the url and model of its requests. */
export interface FirstRequest {
  url: string
  /** `body.model`, or null when the line has none (or not a string). */
  model: string | null
}

export type FirstRequestRead =
  | { readonly ok: true, readonly request: FirstRequest }
  | { readonly ok: false, readonly why: string }

const SP = 0x20
const TAB = 0x09

function isBlank (line: Buffer): boolean {
  for (const byte of line) if (byte !== SP && byte !== TAB) return false
  return true
}

/**
 * Reads the first request line of a stored batch file, and no more: the upload validator
 * already checked that every line has the same url (and, under BATCH_MODEL_POLICY=reject,
 * the same model), so the first line speaks for the file. The stream is destroyed as soon
 * as the line is found, so a 200 MB file costs one chunk of reading, never the file.
 * Lines split as the validator splits them (LineSplitter: BOM, CRLF, blank lines skipped).
 */
export async function readFirstRequest (store: BlobStore, key: string, maxLineBytes: number): Promise<FirstRequestRead> {
  const { body } = await store.get(key)
  let line: Buffer | null = null
  let oversized = false
  const splitter = new LineSplitter({
    maxLineBytes,
    // Once a line was too long the file cannot run; a later line must not stand in for it.
    onLine: (buf) => { if (line === null && !oversized && !isBlank(buf)) line = Buffer.from(buf) },
    onOversizedLine: () => { oversized = true }
  })
  try {
    for await (const chunk of body) {
      splitter.push(chunk as Buffer)
      if (line !== null || oversized) break
    }
    if (line === null && !oversized) splitter.end()
  } finally {
    body.destroy()
  }
  if (oversized && line === null) return { ok: false, why: `its first line is longer than BATCH_MAX_LINE_BYTES (${maxLineBytes} bytes).` }
  if (line === null) return { ok: false, why: 'it has no request line.' }
  return parseRequest(line)
}

function parseRequest (line: Buffer): FirstRequestRead {
  let parsed: unknown
  try {
    parsed = JSON.parse(line.toString('utf8'))
  } catch {
    return { ok: false, why: 'its first line is not JSON.' }
  }
  if (typeof parsed !== 'object' || parsed === null || !('url' in parsed) || typeof parsed.url !== 'string') {
    return { ok: false, why: 'its first line has no url.' }
  }
  const body = 'body' in parsed ? parsed.body : undefined
  const model = typeof body === 'object' && body !== null && 'model' in body && typeof body.model === 'string' ? body.model : null
  return { ok: true, request: { url: parsed.url, model } }
}
