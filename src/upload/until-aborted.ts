/**
 * Iterates `source` until `signal` aborts; from then on the pending read rejects with
 * the signal's reason at once. A client that stalls between two multipart parts would
 * otherwise hold the upload (and a shutdown waiting for it) for as long as it likes.
 */
export async function * untilAborted<T> (source: AsyncIterable<T>, signal: AbortSignal | undefined): AsyncGenerator<T> {
  if (signal === undefined) {
    yield * source
    return
  }
  const iterator = source[Symbol.asyncIterator]()
  let onAbort = (): void => {}
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => { reject(signal.reason) }
  })
  aborted.catch(() => {})
  signal.addEventListener('abort', onAbort, { once: true })
  let finished = false
  try {
    while (true) {
      signal.throwIfAborted()
      const next = iterator.next()
      // Left behind on abort: it settles when the request is torn down, unobserved.
      next.catch(() => {})
      const result = await Promise.race([next, aborted])
      if (result.done === true) {
        finished = true
        return
      }
      yield result.value
    }
  } finally {
    signal.removeEventListener('abort', onAbort)
    // Stopped early (a throw in the loop body or an abort): let the source clean up,
    // without waiting on a read that may never complete.
    if (!finished) iterator.return?.()?.catch(() => {})
  }
}
