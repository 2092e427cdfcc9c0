/**
 * The controllable upstream (test/batches/helpers/controllable-upstream.ts) on a worker
 * thread of its own, for figures measured against its latency (Little's law). On the
 * bench's main thread its answers wait whenever that thread is busy — a synchronous
 * SQLite poll of the batch's progress, the bookkeeping of the requests it keeps — and
 * that wait would be billed to the service as upstream latency above L. On its own
 * thread (its own event loop) its timers fire on time; the two cores are still shared.
 * The bench runs under `--import tsx`, which a worker inherits, so this file is its entry.
 */
import { once } from 'node:events'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { startControllableUpstream } from '../../test/batches/helpers/controllable-upstream.js'

export interface UpstreamThread {
  readonly url: string
  close: () => Promise<void>
}

interface ThreadData {
  upstreamThread: { latencyMs: number }
}

/** Starts the double on a thread, every answer a 200 after `latencyMs`. */
export async function startUpstreamThread (latencyMs: number): Promise<UpstreamThread> {
  const data: ThreadData = { upstreamThread: { latencyMs } }
  const worker = new Worker(new URL(import.meta.url), { workerData: data })
  const url = await new Promise<string>((resolve, reject) => {
    const onError = (error: Error): void => { reject(error) }
    const onExit = (code: number): void => { reject(new Error(`the upstream thread exited with ${code} before it listened`)) }
    worker.once('message', (message: { url: string }) => {
      // Listening: from here a failure of the thread is uncaught and ends the bench, not
      // a rejection of this settled promise that nobody would see.
      worker.off('error', onError)
      worker.off('exit', onExit)
      resolve(message.url)
    })
    worker.once('error', onError)
    worker.once('exit', onExit)
  })
  return {
    url,
    close: async () => {
      const exited = once(worker, 'exit')
      worker.postMessage('close')
      await exited
    }
  }
}

if (!isMainThread && (workerData as Partial<ThreadData> | null)?.upstreamThread !== undefined) {
  const { latencyMs } = (workerData as ThreadData).upstreamThread
  const upstream = await startControllableUpstream()
  upstream.setFallback({ latencyMs })
  // The double keeps every request it saw; nothing here reads them.
  const forget = setInterval(() => { upstream.requests.length = 0 }, 250)
  parentPort?.on('message', (message: unknown) => {
    if (message !== 'close') return
    clearInterval(forget)
    upstream.close().then(() => { parentPort?.close() }, (error: unknown) => { throw error })
  })
  parentPort?.postMessage({ url: upstream.url })
}
