/**
 * Worker threads that check uploads off the event loop (issue 12 item 2): the batch
 * validator (JSON.parse on every line) and the SHA-256 of every byte, which otherwise
 * bind every upload of a replica to the one core the event loop runs on.
 *
 * The bytes still pass once: the upload copies each chunk (multipart's chunks are views
 * of socket buffers, not ours to transfer) into one of a few slices of its own, which go
 * to the worker transferred and come back the same way, so what one upload has in flight
 * is bounded (SLICES × SLICE_BYTES) and the upload waits when its worker lags. A worker
 * holds the checks of many uploads, each fed in order; the live error count comes back
 * with every slice, a few slices later than inline, and the final verdict is always the
 * validator's own after the last byte.
 *
 * With two workers or more, a validated upload is checked by two: one validates, another
 * hashes the same slices, shared (SharedArrayBuffers) rather than transferred, and a slice
 * is refilled once both have handed it back. The SHA-256 was an eighth of a validating
 * worker's time, and one upload's pace is its validating worker's.
 */
import { Buffer } from 'node:buffer'
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import type { BatchValidationResult, BatchValidatorOptions } from '../jsonl/batch-validator.js'
import { ERRORS } from '../errors.js'
import type { FromWorker, ToWorker } from './check-protocol.js'

/** What the upload pipeline needs of a check, inline or pooled. */
export interface UploadCheck {
  /** Validation errors so far: live inline, as of the last slice the worker handed back when pooled. */
  readonly errorCount: number
  /** Undefined when the bytes were taken at once; a promise when the upload must wait for its worker. */
  write: (chunk: Buffer) => Promise<void> | undefined
  /** The file can no longer be a batch file: stop validating, keep hashing. */
  dropValidator: () => void
  /** After the last byte: the hash and, when validated, the validator's verdict. */
  end: () => Promise<CheckResult>
  /** The upload is over, however it ended: frees the check (idempotent). */
  close: () => void
}

export interface CheckResult {
  sha256: string
  validation?: BatchValidationResult
}

const KiB = 1024
/** A slice is the unit copied, posted and handed back: ~4 messages per MiB. */
export const SLICE_BYTES = 256 * KiB
/**
 * Slices one upload owns (2 MiB): two keep its worker busy while it fills the next; the
 * rest absorb the wake-up delays of two threads handing work over on a busy machine.
 */
export const SLICES = 8
/** Bytes one pooled upload holds in its slices, on either side, at most. */
export const CHECK_IN_FLIGHT_BYTES = SLICE_BYTES * SLICES
/** Shared slices a pool of two or more keeps for reuse, per worker (SharedSlices). */
export const KEPT_SLICES_PER_WORKER = SLICES
/**
 * A worker's young generation, as `--max-semi-space-size=16` gives the main thread (three
 * semi-spaces): without it V8 sizes a worker's by the machine's memory.
 */
export const WORKER_YOUNG_GENERATION_MB = 48

/** The pool size for UPLOAD_WORKER_THREADS: the setting, or one worker per core the process may use. */
export function checkPoolSize (threads: number | undefined): number {
  return threads ?? availableParallelism()
}

export interface CheckPoolOptions {
  /** Worker threads; at least 1 (0 means no pool: the caller checks inline). */
  size: number
  /** A worker that stopped unexpectedly (its uploads fail with a 500, a new one replaces it). */
  onWorkerExit?: (error: Error) => void
}

interface Slot {
  worker: Worker
  checks: Map<number, PooledCheck>
  online: boolean
}

// Under tsx (tests, `npm run dev`) this module is the .ts source and so is its sibling;
// the build compiles both to .js.
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './check-worker.ts' : './check-worker.js', import.meta.url)

/** What a validating check weighs against a hashing one when a worker is chosen. */
const VALIDATION_WEIGHT = 8

/** Exported as a symbol, like the validator's kTrackedIds: tests reach the threads (to kill one). */
export const kWorkers: unique symbol = Symbol('CheckPool.workers')
/** And the shared slices kept for reuse, and the closed checks still waiting for theirs. */
export const kSharedSlices: unique symbol = Symbol('CheckPool.sharedSlices')
/** And how many checks validate on each worker. */
export const kValidating: unique symbol = Symbol('CheckPool.validating')

export class CheckPool {
  readonly #slots: Array<Slot | null>
  readonly #onWorkerExit: ((error: Error) => void) | undefined
  #nextId = 1
  #nextToken = 1
  readonly #pendingCounts = new Map<number, (count: number) => void>()
  readonly #shared: SharedSlices
  #closed = false

  constructor (options: CheckPoolOptions) {
    if (!Number.isSafeInteger(options.size) || options.size < 1) throw new RangeError(`a check pool needs at least one worker, got ${options.size}`)
    this.#onWorkerExit = options.onWorkerExit
    this.#slots = Array.from({ length: options.size }, () => null)
    this.#shared = new SharedSlices(KEPT_SLICES_PER_WORKER * options.size)
    for (let i = 0; i < options.size; i++) this.#slots[i] = this.#start(i)
  }

  get size (): number {
    return this.#slots.length
  }

  get [kSharedSlices] (): { spare: number, draining: number } {
    return { spare: this.#shared.spare, draining: this.#shared.draining.size }
  }

  get [kValidating] (): number[] {
    return this.#slots.map((slot) => slot === null ? 0 : [...slot.checks.values()].filter((check) => check.validatesOn(slot)).length)
  }

  get [kWorkers] (): Worker[] {
    return this.#slots.flatMap((slot) => slot === null ? [] : [slot.worker])
  }

  /**
   * A check on the least busy worker; null when no worker runs (every one failed to
   * start), and the caller checks inline.
   */
  open (validator: BatchValidatorOptions | null): UploadCheck | null {
    const best = this.#leastBusy(null)
    if (best === null || this.#closed) return null
    // Only a validated upload is split: hashing alone is lighter than handing slices to two threads.
    const hasher = validator === null ? null : this.#leastBusy(best)
    const id = this.#nextId++
    const check = new PooledCheck(id, best, hasher, validator !== null, this.#shared)
    best.checks.set(id, check)
    post(best, { type: 'open', id, validator, hash: hasher === null })
    if (hasher !== null) {
      hasher.checks.set(id, check)
      post(hasher, { type: 'open', id, validator: null, hash: true })
    }
    return check
  }

  /**
   * The running worker with the least work, other than `not`; null when there is none.
   * Work is weighed, not counted: a split upload is a check on both its workers, but
   * validating costs some eight times what hashing does (SHA-256 was an eighth of a
   * validating worker's time), so counting checks would put every validation on one.
   */
  #leastBusy (not: Slot | null): Slot | null {
    let best: Slot | null = null
    let bestLoad = 0
    for (const slot of this.#slots) {
      if (slot === null || slot === not) continue
      let load = 0
      for (const check of slot.checks.values()) load += check.validatesOn(slot) ? VALIDATION_WEIGHT : 1
      if (best === null || load < bestLoad) {
        best = slot
        bestLoad = load
      }
    }
    return best
  }

  /** Checks each worker holds, asked of the workers themselves (tests: aborted uploads leave none). */
  async sessions (): Promise<number[]> {
    return await Promise.all(this.#slots.map(async (slot) => {
      if (slot === null) return 0
      const token = this.#nextToken++
      const answered = new Promise<number>((resolve) => { this.#pendingCounts.set(token, resolve) })
      post(slot, { type: 'sessions', token })
      return await answered
    }))
  }

  async close (): Promise<void> {
    this.#closed = true
    const slots = this.#slots.filter((slot) => slot !== null)
    this.#slots.fill(null)
    await Promise.all(slots.map(async (slot) => {
      for (const check of slot.checks.values()) check.fail(ERRORS.internal(new Error('the upload check pool closed')))
      await slot.worker.terminate()
    }))
  }

  #start (index: number): Slot {
    const worker = new Worker(WORKER_URL, { resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB } })
    const slot: Slot = { worker, checks: new Map(), online: false }
    // Idle workers must not keep a process alive; an upload in flight holds its socket.
    worker.unref()
    worker.on('online', () => { slot.online = true })
    worker.on('message', (message: FromWorker) => { this.#receive(slot, message) })
    let cause: Error | undefined
    // Without a listener a worker's uncaught error would be thrown on the event loop.
    worker.on('error', (error) => { cause = error })
    worker.on('exit', (code) => {
      if (this.#slots[index] !== slot) return
      const error = new Error(`an upload check worker stopped (exit code ${code})${cause === undefined ? '' : `: ${cause.message}`}`, { cause })
      for (const check of slot.checks.values()) check.fail(ERRORS.internal(error))
      // Closed checks waiting for this worker's acks would wait forever: their slices are let go.
      for (const [id, check] of this.#shared.draining) if (check.uses(slot)) this.#shared.draining.delete(id)
      // A worker that never came up would fail again at once: leave its place empty
      // (uploads go to the others, or inline) rather than respawn in a loop.
      this.#slots[index] = slot.online && !this.#closed ? this.#start(index) : null
      this.#onWorkerExit?.(error)
    })
    return slot
  }

  #receive (slot: Slot, message: FromWorker): void {
    if (message.type === 'sessions') {
      this.#pendingCounts.get(message.token)?.(message.count)
      this.#pendingCounts.delete(message.token)
      return
    }
    // Slices of a closed check come back after it: only its shared slices wait for them.
    const check = slot.checks.get(message.id) ?? (message.type === 'ack' ? this.#shared.draining.get(message.id) : undefined)
    if (check === undefined) return
    if (message.type === 'ack') check.acked(slot, message.slice, message.buffer, message.errorCount)
    else if (message.type === 'result') check.finished(slot, message)
    else check.fail(ERRORS.internal(new Error(`the upload check failed in its worker: ${message.message}`)))
  }
}

function post (slot: Slot, message: ToWorker, transfer: ArrayBuffer[] = []): void {
  slot.worker.postMessage(message, transfer)
}

interface Deferred<T> {
  promise: Promise<T>
  resolve: (value: T) => void
  reject: (error: Error) => void
}

function deferred<T> (): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (error: Error) => void
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
  // Rejected when the worker dies, whether or not anyone has asked yet.
  promise.catch(() => {})
  return { promise, resolve, reject }
}

/**
 * Shared slices outlive their upload: a SharedArrayBuffer is freed only once every thread
 * that saw it has collected its copy of the handle, and a worker collects lazily (40
 * aborted uploads left 32 MiB of RSS). So they are kept here and reused, up to `max`
 * (KEPT_SLICES_PER_WORKER per worker), once both workers have handed them back.
 */
class SharedSlices {
  readonly #spare: Buffer[] = []
  readonly #max: number
  /** Closed checks whose shared slices are still with a worker, by check id. */
  readonly draining = new Map<number, PooledCheck>()

  constructor (max: number) {
    this.#max = max
  }

  get spare (): number {
    return this.#spare.length
  }

  take (): Buffer {
    return this.#spare.pop() ?? Buffer.from(new SharedArrayBuffer(SLICE_BYTES))
  }

  give (slice: Buffer): void {
    if (this.#spare.length < this.#max) this.#spare.push(slice)
  }
}

class PooledCheck implements UploadCheck {
  readonly #id: number
  /** The worker that validates (and hashes, when #hasher is null). */
  readonly #slot: Slot
  /** Another worker that hashes the same slices, shared; null when #slot does both. */
  readonly #hasher: Slot | null
  // Slices by number, and the numbers of those free to fill.
  readonly #slices: Array<Buffer | undefined> = []
  readonly #free: number[] = []
  // Per slice, the workers that have not handed it back yet (two for a shared one).
  readonly #out = new Uint8Array(SLICES)
  #staging = -1
  #fill = 0
  #errorCount = 0
  #failure: Error | null = null
  #freed: Deferred<void> | null = null
  readonly #result = deferred<CheckResult>()
  // The validating worker's answer while the hasher's is awaited, or the other way round.
  #partial: { sha256?: string, validation?: BatchValidationResult } | null = null
  #over = false

  readonly #validates: boolean
  readonly #shared: SharedSlices

  constructor (id: number, slot: Slot, hasher: Slot | null, validates: boolean, shared: SharedSlices) {
    this.#id = id
    this.#slot = slot
    this.#hasher = hasher
    this.#validates = validates
    this.#shared = shared
  }

  /** Whether this check validates on `slot` (rather than only hashing there). */
  validatesOn (slot: Slot): boolean {
    return this.#validates && slot === this.#slot
  }

  get errorCount (): number {
    return this.#errorCount
  }

  write (chunk: Buffer): Promise<void> | undefined {
    if (this.#failure !== null) return Promise.reject(this.#failure)
    // Its shared slices may already be another upload's.
    if (this.#over) return Promise.reject(ERRORS.internal(new Error('the upload check is over')))
    let offset = 0
    while (offset < chunk.length) {
      const staging = this.#staging === -1 ? this.#take() : this.#slices[this.#staging]!
      // Every slice is with the worker: the upload waits for one to come back.
      if (staging === null) return this.#writeLater(chunk.subarray(offset))
      const copied = chunk.copy(staging, this.#fill, offset)
      this.#fill += copied
      offset += copied
      if (this.#fill === staging.length) this.#post()
    }
    return undefined
  }

  dropValidator (): void {
    if (!this.#over) post(this.#slot, { type: 'drop', id: this.#id })
  }

  async end (): Promise<CheckResult> {
    if (this.#failure !== null) throw this.#failure
    if (this.#over) throw ERRORS.internal(new Error('the upload check is over'))
    if (this.#fill > 0) this.#post()
    this.#toBoth({ type: 'end', id: this.#id })
    return await this.#result.promise
  }

  close (): void {
    if (this.#over) return
    this.#over = true
    this.#forget()
    this.#toBoth({ type: 'close', id: this.#id })
    this.#freed?.reject(ERRORS.internal(new Error('the upload check was closed')))
    // Both workers hand back every slice they were sent, even for a closed check.
    if (this.#giveBackShared()) this.#shared.draining.set(this.#id, this)
  }

  acked (from: Slot, slice: number, buffer: ArrayBuffer | SharedArrayBuffer, errorCount: number): void {
    if (from === this.#slot) this.#errorCount = errorCount
    if (--this.#out[slice]! > 0) return
    if (this.#over) {
      if (!this.#giveBackShared()) this.#shared.draining.delete(this.#id)
      return
    }
    // A transferred slice comes back as a new ArrayBuffer; a shared one never left.
    if (buffer instanceof ArrayBuffer) this.#slices[slice] = Buffer.from(buffer)
    this.#free.push(slice)
    const freed = this.#freed
    this.#freed = null
    freed?.resolve()
  }

  finished (from: Slot, message: { sha256?: string, validation?: BatchValidationResult }): void {
    const answer = from === this.#slot ? { validation: message.validation, sha256: message.sha256 ?? this.#partial?.sha256 } : { validation: this.#partial?.validation, sha256: message.sha256 }
    if (this.#hasher !== null && this.#partial === null) {
      this.#partial = answer
      return
    }
    this.#over = true
    this.#forget()
    // Every ack of a worker comes before its result: all slices are back.
    this.#giveBackShared()
    const { sha256, validation } = answer
    if (sha256 === undefined) {
      this.fail(ERRORS.internal(new Error('the upload check ended without a hash')))
      return
    }
    this.#result.resolve(validation === undefined ? { sha256 } : { sha256, validation })
  }

  fail (error: Error): void {
    if (this.#failure !== null) return
    this.#failure = error
    if (!this.#over) this.#toBoth({ type: 'close', id: this.#id })
    this.#over = true
    this.#forget()
    // The slices no worker holds; those with a worker that may have died are let go.
    this.#giveBackShared()
    this.#shared.draining.delete(this.#id)
    this.#freed?.reject(error)
    this.#result.reject(error)
  }

  /** Whether `slot` is one of this check's workers. */
  uses (slot: Slot): boolean {
    return slot === this.#slot || slot === this.#hasher
  }

  #toBoth (message: ToWorker): void {
    post(this.#slot, message)
    if (this.#hasher !== null) post(this.#hasher, message)
  }

  /**
   * Returns the shared slices no worker holds to the pool (the rest as they come back);
   * true while some are still out. A transferred slice is the upload's own and dies with it.
   */
  #giveBackShared (): boolean {
    if (this.#hasher === null) return false
    let out = false
    for (let i = 0; i < this.#slices.length; i++) {
      const slice = this.#slices[i]
      if (slice === undefined) continue
      if (this.#out[i] === 0) {
        this.#shared.give(slice)
        this.#slices[i] = undefined
      } else {
        out = true
      }
    }
    return out
  }

  #forget (): void {
    this.#slot.checks.delete(this.#id)
    this.#hasher?.checks.delete(this.#id)
  }

  #take (): Buffer | null {
    let slice = this.#free.pop()
    if (slice === undefined && this.#slices.length < SLICES) {
      slice = this.#slices.length
      // Its own ArrayBuffer (never the shared pool's), so the whole of it can be transferred;
      // shared memory when two workers read it at once.
      this.#slices.push(this.#hasher === null ? Buffer.allocUnsafeSlow(SLICE_BYTES) : this.#shared.take())
    }
    if (slice === undefined) return null
    this.#staging = slice
    this.#fill = 0
    return this.#slices[slice]!
  }

  #post (): void {
    const slice = this.#staging
    if (slice === -1) return
    const buffer = this.#slices[slice]!.buffer
    const message: ToWorker = { type: 'data', id: this.#id, slice, buffer, length: this.#fill }
    if (this.#hasher === null) {
      this.#out[slice] = 1
      post(this.#slot, message, [buffer as ArrayBuffer])
    } else {
      this.#out[slice] = 2
      this.#toBoth(message)
    }
    this.#staging = -1
    this.#fill = 0
  }

  async #writeLater (rest: Buffer): Promise<void> {
    this.#freed ??= deferred<void>()
    await this.#freed.promise
    const again = this.write(rest)
    if (again !== undefined) await again
  }
}
