import { execFile } from 'node:child_process'
import { request as httpRequest } from 'node:http'
import OpenAI, { toFile } from 'openai'
import { BOUNDARY, multipartBody } from '../../helpers/multipart.js'

/** What a client made of one upload: the answer it saw, or the error it failed with. */
export type Outcome = { status: number, body: unknown } | { failure: string }

export interface Upload {
  /** `http://127.0.0.1:PORT` */
  url: string
  /** undefined: no Authorization header at all. */
  key: string | undefined
  file: Buffer
  /** The same bytes on disk, for curl. */
  filePath: string
}

export type Client = (upload: Upload) => Promise<Outcome>

function describe (error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const cause = error.cause instanceof Error ? `: ${(error.cause as NodeJS.ErrnoException).code ?? error.cause.message}` : ''
  return `${error.name} ${(error as NodeJS.ErrnoException).code ?? error.message}${cause}`
}

/** `fetch` (undici) with a FormData body, as a browser or a Node script would send it. */
export const viaFetch: Client = async ({ url, key, file }) => {
  const form = new FormData()
  form.append('purpose', 'batch')
  form.append('file', new Blob([new Uint8Array(file)]), 'batch.jsonl')
  try {
    const res = await fetch(`${url}/v1/files`, { method: 'POST', body: form, headers: key === undefined ? {} : { authorization: `Bearer ${key}` } })
    return { status: res.status, body: await res.json() }
  } catch (error) {
    return { failure: describe(error) }
  }
}

/** node:http writing the whole body with a Content-Length, on a connection of its own. */
export const viaNodeHttp: Client = async ({ url, key, file }) => {
  const chunks: Buffer[] = []
  for await (const chunk of multipartBody([{ name: 'purpose', value: 'batch' }, { name: 'file', filename: 'batch.jsonl', content: file }])) chunks.push(chunk)
  const body = Buffer.concat(chunks)
  return await new Promise<Outcome>((resolve) => {
    const req = httpRequest(`${url}/v1/files`, {
      method: 'POST',
      agent: false,
      headers: {
        'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
        'content-length': String(body.length),
        ...(key === undefined ? {} : { authorization: `Bearer ${key}` })
      }
    }, (res) => {
      const received: Buffer[] = []
      res.on('data', (chunk: Buffer) => received.push(chunk))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(received).toString('utf8')) }) })
      res.on('error', (error) => { resolve({ failure: describe(error) }) })
    })
    // An error after the answer arrived (the server closing while the rest is written) is not a failure.
    req.on('error', (error) => { resolve({ failure: describe(error) }) })
    req.end(body)
  })
}

/** The official openai Node SDK, without its retries (a retry would hide a lost answer). */
export const viaOpenAiSdk: Client = async ({ url, key, file }) => {
  const client = new OpenAI({
    apiKey: key ?? 'unused',
    baseURL: `${url}/v1`,
    maxRetries: 0,
    // null removes the header the SDK would otherwise send: a caller without a key.
    ...(key === undefined ? { defaultHeaders: { authorization: null } } : {})
  })
  try {
    await client.files.create({ file: await toFile(file, 'batch.jsonl'), purpose: 'batch' })
    return { failure: 'uploaded' }
  } catch (error) {
    if (error instanceof OpenAI.APIError && error.status !== undefined) return { status: error.status, body: { error: error.error } }
    return { failure: describe(error) }
  }
}

/** curl, spawned; `expect` sends `Expect: 100-continue`, otherwise it is turned off. */
export function viaCurl (expect: boolean): Client {
  return async ({ url, key, filePath }) => {
    const args = ['-sS', '-w', '\n%{http_code}', '-F', 'purpose=batch', '-F', `file=@${filePath}`,
      '-H', expect ? 'Expect: 100-continue' : 'Expect:', '--expect100-timeout', '5',
      ...(key === undefined ? [] : ['-H', `Authorization: Bearer ${key}`]), `${url}/v1/files`]
    return await new Promise<Outcome>((resolve) => {
      execFile('curl', args, { timeout: 20_000 }, (error, stdout, stderr) => {
        if (error !== null) { resolve({ failure: `curl exit ${String(error.code)}: ${stderr.trim()}` }); return }
        const cut = stdout.lastIndexOf('\n')
        try {
          resolve({ status: Number(stdout.slice(cut + 1)), body: JSON.parse(stdout.slice(0, cut)) })
        } catch {
          resolve({ failure: `curl: unparsable answer ${JSON.stringify(stdout.slice(0, 200))}` })
        }
      })
    })
  }
}

export const CLIENTS: Record<string, Client> = {
  fetch: viaFetch,
  'node:http': viaNodeHttp,
  'openai SDK': viaOpenAiSdk,
  curl: viaCurl(false),
  'curl (Expect: 100-continue)': viaCurl(true)
}
