import type { Buffer } from 'node:buffer'
import { open, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { BatchError } from '../../schemas/batch-error.js'
import { ApiError, ERRORS } from '../errors.js'
import { BatchValidator, validateBatchFilename, type BatchValidationResult, type BatchValidatorOptions } from '../jsonl/batch-validator.js'
import { sanitizeFilename } from '../upload/filename.js'

// Large reads keep a 500 MiB file to a few hundred validator calls; the validator
// itself takes chunks of any size, as it does from the multipart stream.
export const CHUNK_BYTES = 1024 * 1024

export interface ReadWatcher {
  chunk: (chunk: Buffer, bytesRead: number, errorCount: number) => void
  done: () => void
}

export interface CheckOptions {
  validator: BatchValidatorOptions
  /** BATCH_MAX_FILE_BYTES. */
  maxFileBytes: number
  /** Asked once the size of a regular file is known; may return a watcher of the read. */
  watch?: (sizeBytes: number) => ReadWatcher | undefined
}

export interface FileCheck {
  /** The file's size, or for a pipe refused as too large the bytes read before stopping. */
  bytes: number
  /** A refusal of the whole file before its lines are checked, as the server answers it. */
  fileError: BatchError | null
  /** The line validation; null when `fileError` is set. */
  result: BatchValidationResult | null
}

/** The file cannot be read at all: a usage/IO failure (exit 2), not a verdict. */
export class FileReadError extends Error {
  constructor (file: string, reason: string, cause?: unknown) {
    super(`cannot read ${JSON.stringify(file)}: ${reason}`, { cause })
    this.name = 'FileReadError'
  }
}

function readError (file: string, error: unknown): FileReadError {
  const code = (error as NodeJS.ErrnoException).code
  const reason = code === 'ENOENT'
    ? 'no such file'
    : code === 'EACCES' || code === 'EPERM'
      ? 'permission denied'
      : code === 'EISDIR' ? 'it is a directory' : error instanceof Error ? error.message : String(error)
  return new FileReadError(file, code === undefined ? reason : `${reason} (${code})`, error)
}

function isSystemError (error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).syscall === 'string'
}

/** The server's 413 as a BatchError, so every refusal has the one shape. */
function asBatchError (error: ApiError): BatchError {
  return { code: error.code ?? error.type, message: error.message, param: error.param, line: null }
}

/**
 * Checks a file on disk as the upload pipeline (src/upload/upload-file.ts) checks a
 * `purpose=batch` part: the batch size limit, then the filename rule, then every line
 * through the same BatchValidator. That is the server's order when the file part comes
 * before `purpose`, as curl and the openai SDK send it. Like the server, a refused name
 * or size means the lines are not checked, and reading stops once the limit is passed.
 * The file is streamed in chunks, never held whole.
 */
export async function checkBatchFile (file: string, options: CheckOptions): Promise<FileCheck> {
  // The name as the server would receive it: curl and the SDKs send the basename.
  const nameError = validateBatchFilename(sanitizeFilename(path.basename(file)))
  const limit = options.maxFileBytes
  const tooLarge = (bytes: number): FileCheck => ({ bytes, fileError: asBatchError(ERRORS.fileTooLarge(limit, 'batch')), result: null })

  let handle: FileHandle
  try {
    handle = await open(file, 'r')
  } catch (error) {
    throw readError(file, error)
  }
  try {
    const stat = await handle.stat()
    if (stat.isDirectory()) throw new FileReadError(file, 'it is a directory (EISDIR)')
    // A regular file's size is known up front; pipes and devices are measured by reading.
    const size = stat.isFile() ? stat.size : null
    if (size !== null && size > limit) return tooLarge(size)
    if (size !== null && nameError !== null) return { bytes: size, fileError: nameError, result: null }

    const validator = nameError === null ? new BatchValidator(options.validator) : undefined
    const watcher = size === null ? undefined : options.watch?.(size)
    let bytes = 0
    try {
      const stream = handle.createReadStream({ highWaterMark: CHUNK_BYTES, autoClose: false })
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        bytes += chunk.length
        // Leaving the loop destroys the stream: an endless device is not read to its end.
        if (bytes > limit) return tooLarge(bytes)
        validator?.write(chunk)
        watcher?.chunk(chunk, bytes, validator?.errorCount ?? 0)
      }
    } catch (error) {
      // Only the read can fail with a system error; anything else is a bug and stays one.
      throw isSystemError(error) ? readError(file, error) : error
    } finally {
      watcher?.done()
    }
    if (validator === undefined) return { bytes, fileError: nameError, result: null }
    return { bytes, fileError: null, result: validator.end() }
  } finally {
    await handle.close()
  }
}
