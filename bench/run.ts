/**
 * `npm run bench -- [--quick] [options]` (`--help` lists them): the service against the
 * physical limits of this machine, every figure a median of runs paired with their
 * baselines. Builds nothing itself: the npm script runs `npm run build` first, and the
 * servers are the built dist/src/server.js, started as child processes per driver.
 * Prints a table and writes bench/out/results-<timestamp>.json with every sample.
 */
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { batchFile, type DataFile, type Shape } from './lib/data.js'
import { contentFigures, uploadFsFigures, uploadS3Figures, validatorFigures } from './lib/figures-transfer.js'
import { concurrencyFigures, memoryFigures, metadataFigures } from './lib/figures-service.js'
import { memoryBoundFigures } from './lib/figures-memory-bound.js'
import { durabilityFigures } from './lib/figures-durability.js'
import { batchFigures, littleFigures } from './lib/figures-batch.js'
import { fairnessFigures } from './lib/figures-fairness.js'
import { parseOptions, type BenchOptions, type Group } from './lib/options.js'
import { describeMachine, formatTable, writeResults, type Figure } from './lib/report.js'
import { startS3, type S3Target } from './lib/s3.js'
import { startServer, type RunningServer, type ServerOptions } from './lib/server.js'
import { productionNodeArgs } from '../test/helpers/node-flags.js'
import { MiB } from './lib/stats.js'

const started = performance.now()
const elapsed = (): string => `${((performance.now() - started) / 1000).toFixed(0)} s`
const log = (message: string): void => { process.stderr.write(`[bench ${elapsed()}] ${message}\n`) }

async function withServer<T> (options: ServerOptions, fn: (server: RunningServer) => Promise<T>): Promise<T> {
  const server = await startServer(options)
  try {
    return await fn(server)
  } finally {
    await server.stop()
  }
}

async function main (opts: BenchOptions): Promise<void> {
  if (!existsSync(opts.serverEntry)) throw new Error(`${opts.serverEntry} is missing: run \`npm run build\` first (npm run bench does)`)
  const want = (group: Group): boolean => opts.groups.includes(group)
  const machine = describeMachine()
  log(`${machine.cores} × ${machine.cpus}, node ${machine.node}, load ${machine.loadAverageAtStart.join(' ')}; groups: ${opts.groups.join(', ')}`)
  const dataDir = opts.dataDir ?? await mkdtemp(path.join(tmpdir(), 'files-api-bench-data-'))
  await mkdir(dataDir, { recursive: true })
  const profileDir = path.resolve(opts.outDir, 'profiles')
  // The server runs with the flags `npm start` gives it (production's), then any asked for.
  const nodeArgs = [...productionNodeArgs(), ...opts.serverNodeArgs, ...(opts.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [])]
  const fsServer: ServerOptions = { driver: 'fs', env: opts.serverEnv, nodeArgs, entry: opts.serverEntry }
  const figures: Figure[] = []
  let s3: S3Target | undefined
  try {
    const file = async (shape: Shape, mib: number): Promise<DataFile> => {
      log(`data: ${shape} lines, ${mib} MiB`)
      return await batchFile(dataDir, shape, mib * MiB)
    }
    const short = await file('short', opts.sizeMiB)
    const long = await file('long', opts.sizeMiB)

    if (want('validator')) figures.push(...await validatorFigures([short, long], opts.runs, log))
    if (want('upload-fs') || want('concurrency') || want('metadata') || want('content')) {
      const concurrent = want('concurrency') ? await file('short', opts.concurrentSizeMiB) : undefined
      await withServer(fsServer, async (server) => {
        if (want('upload-fs')) figures.push(...await uploadFsFigures(server, [short, long], opts.runs, log))
        if (concurrent !== undefined) figures.push(...await concurrencyFigures(server, concurrent, opts.concurrency, opts.runs, log))
        if (want('metadata')) figures.push(...await metadataFigures(server, opts.httpSeconds, opts.httpConnections, opts.runs, log))
        if (want('content')) figures.push(...await contentFigures(server, short, opts.runs, log))
      })
    }
    if (want('durability')) figures.push(...await durabilityFigures(opts.durabilityUploads, opts.runs, log))
    if (want('memory')) {
      const files: DataFile[] = []
      for (const mib of opts.memorySizesMiB) files.push(await file('short', mib))
      figures.push(...await memoryFigures(fsServer, files, opts.runs, log))
    }
    if (want('memory-bound')) figures.push(...await memoryBoundFigures(fsServer, dataDir, opts.runs, log))
    if (want('batch')) {
      const postgresUrl = process.env.TEST_DATABASE_URL === '' ? undefined : process.env.TEST_DATABASE_URL
      figures.push(...await batchFigures(fsServer, dataDir, { lines: opts.batchLines, answerBytes: opts.batchAnswerBytes, databases: opts.batchDatabases, postgresUrl }, opts.batchRuns, log))
    }
    if (want('little')) figures.push(...await littleFigures(fsServer, dataDir, [{ latencyMs: 100, concurrency: 64 }, { latencyMs: 100, concurrency: 256 }], log))
    if (want('fairness')) figures.push(...await fairnessFigures(fsServer, dataDir, opts.batchRuns, log))
    if (want('upload-s3') || want('content')) {
      log('starting the S3 server')
      s3 = await startS3()
      const s3Target = s3
      log(`S3: ${s3Target.kind} at ${s3Target.endpoint}`)
      await withServer({ ...fsServer, driver: 's3', s3: s3Target }, async (server) => {
        if (want('upload-s3')) figures.push(...await uploadS3Figures(server, s3Target, [short, long], opts.runs, log))
        if (want('content')) figures.push(...await contentFigures(server, short, opts.runs, log, s3Target))
      })
    }
  } finally {
    await s3?.close()
    if (opts.dataDir === undefined) await rm(dataDir, { recursive: true, force: true })
  }

  const seconds = (performance.now() - started) / 1000
  console.log(`\nfiles-api bench — ${machine.cores} × ${machine.cpus}, node ${machine.node}, ${opts.runs} run(s), ` +
    `load average at start ${machine.loadAverageAtStart.join(' ')}${opts.quick ? ' — QUICK (smoke check, not a measurement)' : ''}\n`)
  console.log(formatTable(figures))
  const out = await writeResults(opts.outDir, { options: opts, machine, seconds, figures })
  console.log(`\n${out} (${seconds.toFixed(0)} s)`)
  if (opts.cpuProf) console.log(`profiles in ${profileDir}: node --import tsx bench/profile-summary.ts <file>`)
}

const options = parseOptions(process.argv.slice(2))
if (options !== null) await main(options)
