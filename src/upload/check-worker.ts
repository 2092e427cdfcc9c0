/**
 * The thread side of the upload check pool (check-pool.ts): one worker hosts the checks
 * of many uploads at once, each a BatchValidator (unless the file cannot be a batch file)
 * and a SHA-256 (unless another worker hashes the same shared slices), fed the bytes in
 * the order they were received. Every slice of bytes is handed back (transferred or
 * shared, never copied) with the live error count, which is both the upload's
 * backpressure and how it learns to stop storing an invalid file.
 */
import { Buffer } from 'node:buffer'
import { createHash, type Hash } from 'node:crypto'
import { parentPort } from 'node:worker_threads'
import { BatchValidator } from '../jsonl/batch-validator.js'
import type { FromWorker, ToWorker } from './check-protocol.js'

interface Check {
  validator: BatchValidator | undefined
  hash: Hash | undefined
}

const port = parentPort
if (port === null) throw new Error('check-worker.ts runs as a worker thread (check-pool.ts starts it)')
const checks = new Map<number, Check>()

function send (message: FromWorker): void {
  port?.postMessage(message)
}

/** A slice goes back as it came: a transferred ArrayBuffer is transferred back, a shared one is not. */
function ack (id: number, slice: number, buffer: ArrayBuffer | SharedArrayBuffer, errorCount: number): void {
  port?.postMessage({ type: 'ack', id, slice, buffer, errorCount } satisfies FromWorker, buffer instanceof ArrayBuffer ? [buffer] : [])
}

/**
 * The slice goes back to be refilled, but a streaming validator keeps views of the line
 * it has not seen the end of (the line splitter's pieces). So the lines the slice
 * completes are fed from the slice itself and only its unfinished tail is copied: the
 * copy is one partial line, not a slice (copying every slice left 256 KiB of garbage
 * per slice for the worker's GC, 35 MiB of RSS after 40 aborted uploads).
 */
function feed (validator: BatchValidator, bytes: Buffer): void {
  const end = bytes.lastIndexOf(0x0a) + 1
  if (end > 0) validator.write(bytes.subarray(0, end))
  if (end < bytes.length) validator.write(Buffer.from(bytes.subarray(end)))
}

function handle (message: ToWorker): void {
  if (message.type === 'sessions') {
    send({ type: 'sessions', token: message.token, count: checks.size })
    return
  }
  const { id } = message
  if (message.type === 'open') {
    try {
      checks.set(id, { validator: message.validator === null ? undefined : new BatchValidator(message.validator), hash: message.hash ? createHash('sha256') : undefined })
    } catch (error) {
      // Thrown here, it would stop the worker and every upload on it (a validator that
      // cannot start: its scanner's WebAssembly missing or out of memory): fail this one.
      send({ type: 'failed', id, message: error instanceof Error ? error.message : String(error) })
    }
    return
  }
  const check = checks.get(id)
  // A check closed by its upload (an abort) may still have slices on their way: drop them.
  if (check === undefined) {
    if (message.type === 'data') ack(id, message.slice, message.buffer, 0)
    return
  }
  try {
    switch (message.type) {
      case 'data': {
        const bytes = Buffer.from(message.buffer, 0, message.length)
        check.hash?.update(bytes)
        if (check.validator !== undefined) feed(check.validator, bytes)
        ack(id, message.slice, message.buffer, check.validator?.errorCount ?? 0)
        return
      }
      case 'drop':
        check.validator = undefined
        return
      case 'end': {
        checks.delete(id)
        const validation = check.validator?.end()
        send({ type: 'result', id, ...(check.hash === undefined ? {} : { sha256: check.hash.digest('hex') }), ...(validation === undefined ? {} : { validation }) })
        return
      }
      case 'close':
        checks.delete(id)
    }
  } catch (error) {
    // A check that threw is in no known state: that upload fails, the others go on. Its
    // slice still goes back: a shared one is refilled only once both workers are done.
    checks.delete(id)
    send({ type: 'failed', id, message: error instanceof Error ? error.message : String(error) })
    if (message.type === 'data') ack(id, message.slice, message.buffer, 0)
  }
}

port.on('message', handle)
