import { isUtf8 } from 'node:buffer'
import { Buffer } from 'node:buffer'
import type { BatchError } from '../../schemas/batch-error.js'
import { CustomIdSet } from './custom-id-set.js'
import { describe, quote, truncate } from './batch-messages.js'
import { LineSplitter } from './line-splitter.js'
import {
  K_ABSENT, K_ARRAY, K_FALSE, K_NULL, K_NUMBER, K_OBJECT, K_STRING, K_TRUE, bytesEqual, lineScannerFor,
  S_BODY, S_CUSTOM_ID, S_INPUT, S_MESSAGES, S_METHOD, S_MODEL, S_PROMPT, S_STREAM, S_URL
} from './line-scanner.js'

/** Endpoints OpenAI's Batch API accepts (https://platform.openai.com/docs/api-reference/batch/create). */
export const DEFAULT_BATCH_URLS: readonly string[] = ['/v1/chat/completions', '/v1/embeddings', '/v1/completions', '/v1/responses', '/v1/moderations']

export interface BatchValidatorOptions {
  maxRequests: number
  maxLineBytes: number
  allowedUrls: readonly string[]
  modelPolicy: 'warn' | 'reject'
  /** Caps the `errors` and `warnings` arrays (default 100); the counts stay exact. */
  maxReportedErrors?: number
}

export interface BatchValidationResult {
  valid: boolean
  requests: number
  bytes: number
  url: string | null
  models: Record<string, number>
  errors: BatchError[]
  errorCount: number
  warnings: BatchError[]
  warningCount: number
}

// OpenAI: "custom_id ... Must be unique for each request in a batch", at most 512 characters.
const MAX_CUSTOM_ID_CHARS = 512
const DEFAULT_MAX_REPORTED = 100
const MAX_COUNTED_MODELS = 100
const MAX_MODEL_KEY_CHARS = 256
const MESSAGE_ROLES: ReadonlySet<string> = new Set(['system', 'user', 'assistant', 'tool', 'developer', 'function'])
const MESSAGE_ROLE_LIST: readonly string[] = [...MESSAGE_ROLES]
const ROLE_LIST = MESSAGE_ROLE_LIST.join(', ')
/** The body field each endpoint cannot run without. */
const REQUIRED_BODY_FIELD: ReadonlyMap<string, string> = new Map(Object.entries({
  '/v1/chat/completions': 'messages', '/v1/embeddings': 'input', '/v1/moderations': 'input', '/v1/responses': 'input', '/v1/completions': 'prompt'
}))
/** The scanner's slot of each required field. */
const FIELD_SLOT: ReadonlyMap<string, number> = new Map([['messages', S_MESSAGES], ['input', S_INPUT], ['prompt', S_PROMPT]])
const POST = Buffer.from('POST')

/**
 * Validates an OpenAI Batch input file in one streaming pass. Every line is checked even
 * after the first error, so one result names all faulty lines.
 *
 * Reporting decision: a line that is not UTF-8, not JSON, not an object or too large gets
 * that one error. Otherwise every independent field error of the line is reported
 * (custom_id, method, url, body); body checks stop at the first fault of the body itself,
 * and `messages` reports only its first bad entry, so one line cannot flood the report.
 */
export { summarizeBatchErrors, validateBatchFilename } from './batch-messages.js'

/** Exported as a symbol, like the splitter's kPendingBytes: tests read the set's bound. */
export const kTrackedIds: unique symbol = Symbol('BatchValidator.trackedIds')

export class BatchValidator {
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
  readonly #scanner = lineScannerFor(MESSAGE_ROLE_LIST)
  // The UTF-8 bytes of #url and #model once known, so the scanned path compares a line's
  // bytes with them instead of decoding the same string on every line. Only set when
  // the bytes decode back to the very string (a lone surrogate would not).
  #urlBytes: Buffer | null = null
  #modelBytes: Buffer | null = null
  #bytesKnown = false
  // With them, the body field #url requires (the scanner's slot, or -1 for none) and
  // whether it is messages: what #checkCommon needs to know of the url without a lookup.
  #fieldSlot = -1
  #fieldIsMessages = false

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

  /** The custom_id set's size and bytes: for tests of its bound, not part of the API. */
  get [kTrackedIds] (): { size: number, bytes: number } {
    return { size: this.#ids.size, bytes: this.#ids.bytes }
  }

  /** Live, so the caller can stop storing at the first error while validation reads on. */
  get errorCount (): number {
    return this.#errorCount
  }

  write (chunk: Buffer): void {
    this.#scanner.forget()
    this.#splitter.push(chunk)
  }

  end (): BatchValidationResult {
    if (this.#result !== null) return this.#result
    this.#scanner.forget()
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
    if (this.#scanner.scan(buf, start, end) && (this.#checkCommon(buf, n) || this.#checkScanned(buf, n))) return
    this.#parseLine(buf, start, end, n)
  }

  /**
   * The rules over what the scanner read, when that is enough to apply them: every value
   * they read is then a string, a literal, absent, or (body, body.messages) the object or
   * array the scanner vouched for; the same #check methods word every error. Returns
   * false, having recorded nothing, for a line that needs the parsed request (a value
   * that `describe` names by its shape, a bad messages entry): #parseLine decides it.
   */
  #checkScanned (buf: Buffer, n: number): boolean {
    const scanner = this.#scanner
    const kinds = scanner.kinds
    const bodyKind = kinds[S_BODY]!
    if (!isLiteral(kinds[S_CUSTOM_ID]!) || !isLiteral(kinds[S_METHOD]!) || !isLiteral(kinds[S_URL]!) ||
      (bodyKind !== K_OBJECT && bodyKind !== K_ABSENT && bodyKind !== K_NULL) ||
      (bodyKind === K_OBJECT && !isLiteral(kinds[S_MODEL]!))) return false
    const url = this.#urlBytes !== null && this.#isUnescaped(S_URL, this.#urlBytes, buf) ? this.#url : this.#scannedValue(buf, S_URL)
    // What #checkUrl returns: the url when allowed, even one that differs from line 1's.
    const field = typeof url === 'string' && this.#allowedUrls.has(url) ? REQUIRED_BODY_FIELD.get(url) : undefined
    const fieldSlot = field === undefined || bodyKind !== K_OBJECT ? -1 : FIELD_SLOT.get(field)!
    const fieldKind = fieldSlot === -1 ? K_ABSENT : kinds[fieldSlot]!
    if (field === 'messages' && fieldKind !== K_ABSENT && fieldKind !== K_NULL && !this.#messagesPass(fieldKind)) return false
    // Decided: from here on the line is checked as #checkRequest would.
    const method = this.#isUnescaped(S_METHOD, POST, buf) ? 'POST' : this.#scannedValue(buf, S_METHOD)
    this.#checkScannedId(buf, n)
    this.#checkMethod(method, n)
    this.#checkUrl(url, n)
    if (bodyKind !== K_OBJECT) {
      this.#missingBody(n)
      return true
    }
    this.#checkModel(this.#modelBytes !== null && this.#isUnescaped(S_MODEL, this.#modelBytes, buf) ? this.#model : this.#scannedValue(buf, S_MODEL), n)
    if (kinds[S_STREAM] === K_TRUE) this.#streamError(n)
    if (fieldSlot !== -1 && (fieldKind === K_ABSENT || fieldKind === K_NULL)) this.#missingField(field!, url as string, n)
    this.#rememberBytes()
    return true
  }

  /**
   * The line nearly every line of a batch file is: POST, line 1's url and model (as bytes,
   * unescaped), a plain ASCII custom_id, a body with the url's required field in order and
   * no stream. #checkScanned would find nothing to say of it but a duplicate id and would
   * count its model; this does the same without the lookups and calls. False, having
   * recorded nothing, for any other line.
   */
  #checkCommon (buf: Buffer, n: number): boolean {
    const urlBytes = this.#urlBytes
    const modelBytes = this.#modelBytes
    if (urlBytes === null || modelBytes === null) return false
    const scanner = this.#scanner
    const kinds = scanner.kinds
    if (kinds[S_BODY] !== K_OBJECT || kinds[S_STREAM] === K_TRUE ||
      !this.#isUnescaped(S_METHOD, POST, buf) || !this.#isUnescaped(S_URL, urlBytes, buf) || !this.#isUnescaped(S_MODEL, modelBytes, buf)) return false
    if (!this.#isPlainId()) return false
    const fieldSlot = this.#fieldSlot
    if (fieldSlot !== -1) {
      const fieldKind = kinds[fieldSlot]!
      if (fieldKind === K_ABSENT || fieldKind === K_NULL) return false
      if (this.#fieldIsMessages && !this.#messagesPass(fieldKind)) return false
    }
    this.#checkPlainId(buf, n)
    this.#modelCount++
    return true
  }

  /** Whether body.messages, of `kind`, is what the rules pass without its parse: a non-empty array of clean entries. */
  #messagesPass (kind: number): boolean {
    const scanner = this.#scanner
    return kind === K_ARRAY && scanner.messageCount > 0 && scanner.messagesClean
  }

  /** The scanned custom_id is plain ASCII of 1 to 512 characters: every check but the duplicate one passes. */
  #isPlainId (): boolean {
    const scanner = this.#scanner
    const length = scanner.ends[S_CUSTOM_ID]! - scanner.starts[S_CUSTOM_ID]!
    return scanner.kinds[S_CUSTOM_ID] === K_STRING && scanner.escaped[S_CUSTOM_ID] === 0 && scanner.high[S_CUSTOM_ID] === 0 &&
      length > 0 && length <= MAX_CUSTOM_ID_CHARS
  }

  /** The duplicate check of a plain id, answered by the id set from its bytes (no string decoded). */
  #checkPlainId (buf: Buffer, n: number): void {
    const start = this.#scanner.starts[S_CUSTOM_ID]!
    const end = this.#scanner.ends[S_CUSTOM_ID]!
    const first = this.#requests > this.#maxRequests ? this.#ids.firstLineAscii(buf, start, end) : this.#ids.firstLineOrAddAscii(buf, start, end, n)
    if (first !== 0) this.#duplicateId(buf.toString('latin1', start, end), first, n)
  }

  /**
   * #checkCustomId for the scanned id. The common id, plain ASCII of 1 to 512 characters,
   * passes every check but the duplicate one, which the id set answers from its bytes
   * (no string decoded); any other id is decoded and checked as a string.
   */
  #checkScannedId (buf: Buffer, n: number): void {
    if (this.#isPlainId()) this.#checkPlainId(buf, n)
    else this.#checkCustomId(this.#scannedValue(buf, S_CUSTOM_ID), n)
  }

  /** Whether the slot holds an escape-free string whose bytes are `bytes`. */
  #isUnescaped (slot: number, bytes: Buffer, buf: Buffer): boolean {
    const scanner = this.#scanner
    return scanner.kinds[slot] === K_STRING && scanner.escaped[slot] === 0 && bytesEqual(buf, scanner.starts[slot]!, scanner.ends[slot]!, bytes)
  }

  /** The value JSON.parse gives for a slot the scanner found absent, a literal or a string. */
  #scannedValue (buf: Buffer, slot: number): unknown {
    const scanner = this.#scanner
    switch (scanner.kinds[slot]) {
      case K_NULL: return null
      case K_TRUE: return true
      case K_FALSE: return false
      case K_STRING: {
        const start = scanner.starts[slot]!
        const end = scanner.ends[slot]!
        // An escaped string is decoded by JSON.parse itself, quotes included: exact by construction.
        return scanner.escaped[slot] === 0 ? buf.toString('utf8', start, end) : JSON.parse(buf.toString('utf8', start - 1, end + 1)) as string
      }
      default: return undefined
    }
  }

  /** Once #url and #model are both set (they never change after), their bytes, once. */
  #rememberBytes (): void {
    if (this.#bytesKnown || this.#url === null || this.#model === null) return
    this.#urlBytes = exactBytes(this.#url)
    this.#modelBytes = exactBytes(this.#model)
    // #url is only ever an allowed url (#checkUrl).
    const field = REQUIRED_BODY_FIELD.get(this.#url)
    this.#fieldSlot = field === undefined ? -1 : FIELD_SLOT.get(field)!
    this.#fieldIsMessages = field === 'messages'
    this.#bytesKnown = true
  }

  /** The JSON.parse path: the reference for every line the scanner did not decide. */
  #parseLine (buf: Buffer, start: number, end: number, n: number): void {
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
    const url = this.#checkHead(request.custom_id, request.method, request.url, n)
    const body = request.body
    if (isAbsent(body)) {
      this.#missingBody(n)
      return
    }
    if (!isObject(body)) {
      this.#error('invalid_parameter', n, 'body', `line ${n}: body must be a JSON object, got ${describe(body)}.`)
      return
    }
    this.#checkModel(body.model, n)
    if (body.stream === true) this.#streamError(n)
    const field = url === null ? undefined : REQUIRED_BODY_FIELD.get(url)
    if (field === undefined) return
    const value = body[field]
    if (isAbsent(value)) {
      this.#missingField(field, url!, n)
    } else if (field === 'messages') {
      this.#checkMessages(value, n)
    }
  }

  /** custom_id, method and url, in that order; returns #checkUrl's answer. */
  #checkHead (id: unknown, method: unknown, url: unknown, n: number): string | null {
    this.#checkCustomId(id, n)
    this.#checkMethod(method, n)
    return this.#checkUrl(url, n)
  }

  #checkMethod (method: unknown, n: number): void {
    if (method !== 'POST') {
      this.#error('invalid_method', n, 'method', isAbsent(method)
        ? `line ${n}: method is missing; set "method": "POST".`
        : `line ${n}: method must be "POST", got ${describe(method)}.`)
    }
  }

  #missingBody (n: number): void {
    this.#error('missing_required_parameter', n, 'body', `line ${n}: body is missing; put the request parameters in a "body" object.`)
  }

  #streamError (n: number): void {
    this.#error('streaming_unsupported', n, 'body.stream', `line ${n}: body.stream is true, but batch requests cannot stream; remove it or set it to false.`)
  }

  #missingField (field: string, url: string, n: number): void {
    this.#error('missing_required_parameter', n, `body.${field}`, `line ${n}: body.${field} is missing; ${url} requests need it.`)
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
    if (first !== 0) this.#duplicateId(id, first, n)
  }

  #duplicateId (id: string, first: number, n: number): void {
    this.#error('duplicate_custom_id', n, 'custom_id', `line ${n}: custom_id ${quote(id)} already used on line ${first}; custom_id must be unique within the file.`)
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

/** A kind #scannedValue can give exactly: absent, null, true, false or a string. */
function isLiteral (kind: number): boolean {
  return kind !== K_ARRAY && kind !== K_OBJECT && kind !== K_NUMBER
}

/** The string's UTF-8 bytes, or null when they would not decode back to it (lone surrogates). */
function exactBytes (value: string): Buffer | null {
  const bytes = Buffer.from(value, 'utf8')
  return bytes.toString('utf8') === value ? bytes : null
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
