export interface PeriodicJob<T> {
  /** Runs the job now, or joins the run already under way (never two at once in a process). */
  run: () => Promise<T>
  /** Starts the timer (intervalMs <= 0: never). */
  start: () => void
  /** Stops the timer and waits for a run under way. */
  stop: () => Promise<void>
}

/** A background job on a timer that never overlaps itself and never keeps the process alive. */
export function periodicJob<T> (name: string, intervalMs: number, job: () => Promise<T>,
  log: { error: (obj: object, msg: string) => void }): PeriodicJob<T> {
  let running: Promise<T> | undefined
  let timer: NodeJS.Timeout | undefined
  const run = async (): Promise<T> => {
    running ??= job().finally(() => { running = undefined })
    return running
  }
  return {
    run,
    start () {
      if (intervalMs <= 0 || timer !== undefined) return
      timer = setInterval(() => {
        run().catch((error: unknown) => log.error({ err: error, job: name }, `${name} failed`))
      }, intervalMs)
      timer.unref()
    },
    async stop () {
      clearInterval(timer)
      timer = undefined
      await running?.catch(() => {})
    }
  }
}
