// The JSON.parse-based validator as it was before the byte scanner (src/jsonl/line-scanner.ts):
// the reference the equivalence tests hold BatchValidator to. Kept verbatim but for imports.
import { isUtf8 } from 'node:buffer'
import type { Buffer } from 'node:buffer'
import type { BatchError } from '../../../schemas/batch-error.js'
import { CustomIdSet } from '../../../src/jsonl/custom-id-set.js'
import { describe, quote, truncate } from '../../../src/jsonl/batch-messages.js'
import { LineSplitter } from '../../../src/jsonl/line-splitter.js'
import type { BatchValidationResult, BatchValidatorOptions } from '../../../src/jsonl/batch-validator.js'

// OpenAI: "custom_id ... Must be unique for each request in a batch", at most 512 characters.
const MAX_CUSTOM_ID_CHARS = 512
const DEFAULT_MAX_REPORTED = 100
const MAX_COUNTED_MODELS = 100
const MAX_MODEL_KEY_CHARS = 256
const MESSAGE_ROLES: ReadonlySet<string> = new Set(['system', 'user', 'assistant', 'tool', 'developer', 'function'])
const ROLE_LIST = [...MESSAGE_ROLES].join(', ')
/** The body field each endpoint cannot run without. */
const REQUIRED_BODY_FIELD: ReadonlyMap<string, string> = new Map(Object.entries({
  '/v1/chat/completions': 'messages', '/v1/embeddings': 'input', '/v1/moderations': 'input', '/v1/responses': 'input', '/v1/completions': 'prompt'
}))

/**
 * Validates an OpenAI Batch input file in one streaming pass. Every line is checked even
 * after the first error, so one result names all faulty lines.
 *
 * Reporting decision: a line that is not UTF-8, not JSON, not an object or too large gets
 * that one error. Otherwise every independent field error of the line is reported
 * (custom_id, method, url, body); body checks stop at the first fault of the body itself,
 * and `messages` reports only its first bad entry, so one line cannot flood the report.
 */

export class ReferenceValidator {
  readonly #maxRequests: number
  readonly #maxLineBytes: number
  readonly #allowedUrls: ReadonlySet<string>
  readonly #urlList: string
  readonly #rejectModelMismatch: boolean
  readonly #maxReported: number
  readonly #splitter: LineSplitter
  #requests = 0
  #url: string | null = null
  #urlLine = 0
  #model: string | null = null
  #modelLine = 0
  // The first model's count lives in a field: nearly every line repeats it, and two Map
  // lookups per line show in the profile. The Map holds the other models.
  #modelCount = 0
  readonly #models = new Map<string, number>()
  // Fingerprints, not the ids: a few bytes per id however long (see custom-id-set.ts).
  readonly #ids = new CustomIdSet()
  readonly #errors: BatchError[] = []
  #errorCount = 0
  readonly #warnings: BatchError[] = []
  #warningCount = 0
  // Blank lines are only errors when a request follows them; trailing ones are ignored.
  #blankStart = 0
  #blankCount = 0
  #result: BatchValidationResult | null = null

  constructor (opts: BatchValidatorOptions) {
    this.#maxRequests = opts.maxRequests
    this.#maxLineBytes = opts.maxLineBytes
    this.#allowedUrls = new Set(opts.allowedUrls)
    this.#urlList = opts.allowedUrls.join(', ')
    this.#rejectModelMismatch = opts.modelPolicy === 'reject'
    this.#maxReported = opts.maxReportedErrors ?? DEFAULT_MAX_REPORTED
    this.#splitter = new LineSplitter({
      maxLineBytes: opts.maxLineBytes,
      onLineRange: (buf, start, end, n) => this.#onLine(buf, start, end, n),
      onOversizedLine: (n) => this.#onOversizedLine(n)
    })
  }

  /** Live, so the caller can stop storing at the first error while validation reads on. */
  get errorCount (): number {
    return this.#errorCount
  }

  write (chunk: Buffer): void {
    this.#splitter.push(chunk)
  }

  end (): BatchValidationResult {
    if (this.#result !== null) return this.#result
    this.#splitter.end()
    if (this.#requests === 0) this.#error('empty_file', null, null, 'The file has no requests; a batch file needs one JSON request object per line.')
    this.#result = {
      valid: this.#errorCount === 0,
      requests: this.#requests,
      bytes: this.#splitter.bytes,
      url: this.#url,
      models: this.#modelCounts(),
      errors: this.#errors,
      errorCount: this.#errorCount,
      warnings: this.#warnings,
      warningCount: this.#warningCount
    }
    return this.#result
  }

  #onLine (buf: Buffer, start: number, end: number, n: number): void {
    if (isBlank(buf, start, end)) {
      if (this.#blankCount === 0) this.#blankStart = n
      this.#blankCount++
      return
    }
    this.#startRequest(n)
    // Decoding replaces every invalid UTF-8 sequence with U+FFFD, so a text without one
    // was valid: the exact (native) check runs only for the rare line that has one, and
    // V8 answers the search at once for the common one-byte (Latin-1) strings.
    const text = buf.toString('utf8', start, end)
    if (text.includes('\uFFFD') && !isUtf8(buf.subarray(start, end))) {
      this.#error('invalid_encoding', n, null, `line ${n}: is not valid UTF-8 text; save the file with UTF-8 encoding.`)
      return
    }
    let request: unknown
    try {
      request = JSON.parse(text)
    } catch (err) {
      const reason = truncate(err instanceof Error ? err.message : String(err), 120)
      this.#error('invalid_json_line', n, null, `line ${n}: is not valid JSON (${reason}); write each request as one complete JSON object on a single line.`)
      return
    }
    if (!isObject(request)) {
      this.#error('invalid_json_line', n, null, `line ${n}: must be a JSON object with custom_id, method, url and body, got ${describe(request)}.`)
      return
    }
    this.#checkRequest(request, n)
  }

  #onOversizedLine (n: number): void {
    this.#startRequest(n)
    this.#error('line_too_large', n, null, `line ${n}: is longer than the limit of ${this.#maxLineBytes} bytes per request line; shorten the request.`)
  }

  #startRequest (n: number): void {
    const start = this.#blankStart
    for (let i = 0; i < this.#blankCount; i++) {
      this.#error('empty_line', start + i, null, `line ${start + i}: is empty; remove blank lines between requests.`)
    }
    this.#blankCount = 0
    this.#requests++
    if (this.#requests === this.#maxRequests + 1) {
      this.#error('too_many_tasks', n, null, `line ${n}: the file has more than ${this.#maxRequests} requests, the limit for one batch; split it into several files.`)
    }
  }

  #checkRequest (request: Record<string, unknown>, n: number): void {
    this.#checkCustomId(request.custom_id, n)
    const method = request.method
    if (method !== 'POST') {
      this.#error('invalid_method', n, 'method', isAbsent(method)
        ? `line ${n}: method is missing; set "method": "POST".`
        : `line ${n}: method must be "POST", got ${describe(method)}.`)
    }
    const url = this.#checkUrl(request.url, n)
    const body = request.body
    if (isAbsent(body)) {
      this.#error('missing_required_parameter', n, 'body', `line ${n}: body is missing; put the request parameters in a "body" object.`)
      return
    }
    if (!isObject(body)) {
      this.#error('invalid_parameter', n, 'body', `line ${n}: body must be a JSON object, got ${describe(body)}.`)
      return
    }
    this.#checkModel(body.model, n)
    if (body.stream === true) this.#error('streaming_unsupported', n, 'body.stream', `line ${n}: body.stream is true, but batch requests cannot stream; remove it or set it to false.`)
    const field = url === null ? undefined : REQUIRED_BODY_FIELD.get(url)
    if (field === undefined) return
    const value = body[field]
    if (isAbsent(value)) {
      this.#error('missing_required_parameter', n, `body.${field}`, `line ${n}: body.${field} is missing; ${url} requests need it.`)
    } else if (field === 'messages') {
      this.#checkMessages(value, n)
    }
  }

  #checkCustomId (id: unknown, n: number): void {
    if (isAbsent(id)) {
      this.#error('missing_required_parameter', n, 'custom_id', `line ${n}: custom_id is missing; give every request a unique string custom_id.`)
      return
    }
    if (typeof id !== 'string' || id.length === 0) {
      this.#error('invalid_custom_id', n, 'custom_id', `line ${n}: custom_id must be a non-empty string, got ${describe(id)}.`)
      return
    }
    // UTF-16 length bounds the character count from above, so only long ids are counted.
    if (id.length > MAX_CUSTOM_ID_CHARS) {
      let chars = 0
      for (const _char of id) chars++
      if (chars > MAX_CUSTOM_ID_CHARS) {
        this.#error('invalid_custom_id', n, 'custom_id', `line ${n}: custom_id is ${chars} characters long; the limit is ${MAX_CUSTOM_ID_CHARS}.`)
        return
      }
    }
    // Past the limit the file is refused anyway: its ids are still compared with the
    // recorded ones, but never kept, so the set holds at most maxRequests ids (issue #9).
    const first = this.#requests > this.#maxRequests ? this.#ids.firstLine(id) : this.#ids.firstLineOrAdd(id, n)
    if (first !== 0) this.#error('duplicate_custom_id', n, 'custom_id', `line ${n}: custom_id ${quote(id)} already used on line ${first}; custom_id must be unique within the file.`)
  }

  /** Returns the line's url when it is allowed, so body checks can follow that endpoint. */
  #checkUrl (url: unknown, n: number): string | null {
    // The first line's url was allowed; nearly every line repeats it, so skip the Set.
    if (this.#url !== null && url === this.#url) return this.#url
    if (typeof url !== 'string' || !this.#allowedUrls.has(url)) {
      this.#error('invalid_url', n, 'url', isAbsent(url)
        ? `line ${n}: url is missing; use one of ${this.#urlList}.`
        : `line ${n}: url ${describe(url)} is not supported; use one of ${this.#urlList}.`)
      return null
    }
    if (this.#url === null) {
      this.#url = url
      this.#urlLine = n
    } else if (url !== this.#url) {
      this.#error('url_mismatch', n, 'url', `line ${n}: url ${quote(url)} differs from ${quote(this.#url)} on line ${this.#urlLine}; all requests in a batch file must use the same url.`)
    }
    return url
  }

  #checkModel (model: unknown, n: number): void {
    if (isAbsent(model) || model === '') {
      this.#error('missing_required_parameter', n, 'body.model', `line ${n}: body.model is missing or empty; name the model that should run the request.`)
      return
    }
    if (typeof model !== 'string') {
      this.#error('invalid_parameter', n, 'body.model', `line ${n}: body.model must be a string, got ${describe(model)}.`)
      return
    }
    if (model === this.#model) {
      this.#modelCount++
      return
    }
    if (this.#model === null) {
      this.#model = model
      this.#modelCount = 1
      this.#modelLine = n
    } else {
      this.#countOtherModel(model)
      const message = `line ${n}: body.model ${quote(model)} differs from ${quote(this.#model)} on line ${this.#modelLine}; a batch runs one model.`
      if (this.#rejectModelMismatch) this.#error('model_mismatch', n, 'body.model', message)
      else this.#warning('model_mismatch', n, 'body.model', message)
    }
  }

  /**
   * The other models are counted for the report only, so their memory is capped: every
   * line of a file could name another model of up to a line's length (issue #9 item 7).
   * Past MAX_COUNTED_MODELS distinct names new ones go uncounted, and a name is counted
   * under its first MAX_MODEL_KEY_CHARS characters; the warnings and errors are exact.
   */
  #countOtherModel (model: string): void {
    const key = truncate(model, MAX_MODEL_KEY_CHARS)
    const count = this.#models.get(key)
    if (count !== undefined) this.#models.set(key, count + 1)
    else if (this.#models.size < MAX_COUNTED_MODELS) this.#models.set(key, 1)
  }

  /** Requests per model, the first line's model first (the order the Map used to give). */
  #modelCounts (): Record<string, number> {
    // fromEntries, not assignment: a model named "__proto__" must stay an own key.
    const first: Array<[string, number]> = this.#model === null ? [] : [[this.#model, this.#modelCount]]
    return Object.fromEntries([...first, ...this.#models])
  }

  #checkMessages (messages: unknown, n: number): void {
    if (!Array.isArray(messages) || messages.length === 0) {
      this.#error('invalid_parameter', n, 'body.messages', `line ${n}: body.messages must be a non-empty array of messages, got ${describe(messages)}.`)
      return
    }
    for (let i = 0; i < messages.length; i++) {
      const message: unknown = messages[i]
      if (!isObject(message)) {
        this.#error('invalid_parameter', n, `body.messages[${i}]`, `line ${n}: body.messages[${i}] must be an object with a role, got ${describe(message)}.`)
        return
      }
      const role = message.role
      if (typeof role !== 'string' || !MESSAGE_ROLES.has(role)) {
        this.#error('invalid_parameter', n, `body.messages[${i}].role`, `line ${n}: body.messages[${i}].role must be one of ${ROLE_LIST}, got ${describe(role)}.`)
        return
      }
    }
  }

  #error (code: string, line: number | null, param: string | null, message: string): void {
    if (this.#errorCount++ < this.#maxReported) this.#errors.push({ code, message, param, line })
  }

  #warning (code: string, line: number, param: string, message: string): void {
    if (this.#warningCount++ < this.#maxReported) this.#warnings.push({ code, message, param, line })
  }
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isAbsent (value: unknown): value is null | undefined {
  return value === undefined || value === null
}

/** Spaces and tabs only: such a line carries no request, like an empty one. */
function isBlank (buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const b = buf[i]
    if (b !== 0x20 && b !== 0x09) return false
  }
  return true
}
