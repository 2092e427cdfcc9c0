/**
 * Command-line options of `npm run bench -- [options]`. The defaults keep the full run
 * under ~10 minutes on 2 cores; --quick is a 1–2 minute smoke check of every figure.
 */
import { parseArgs } from 'node:util'

export const GROUPS = ['validator', 'upload-fs', 'upload-s3', 'memory', 'memory-bound', 'concurrency', 'metadata', 'content', 'durability', 'batch', 'little', 'fairness'] as const
export type Group = typeof GROUPS[number]

export interface BenchOptions {
  quick: boolean
  runs: number
  /** Size of the short- and long-line files for the upload, validator and content figures. */
  sizeMiB: number
  /** Upload sizes for the memory figure. */
  memorySizesMiB: number[]
  concurrency: number
  concurrentSizeMiB: number
  /** Small uploads per side and run for the durability figure. */
  durabilityUploads: number
  /** Seconds per autocannon measurement. */
  httpSeconds: number
  httpConnections: number
  /** Lines of the batch figure's batch, answer size, and its runs per database. */
  batchLines: number
  batchAnswerBytes: number
  batchRuns: number
  batchDatabases: Array<'sqlite' | 'postgres'>
  groups: Group[]
  /** Where generated data goes; kept and reused when given, else a temp dir removed at the end. */
  dataDir: string | undefined
  outDir: string
  /** Start the servers with --cpu-prof, profiles into <outDir>/profiles. */
  cpuProf: boolean
  serverEnv: Record<string, string>
  /** Extra node flags for the server (`--server-node-arg`), e.g. V8 heap settings to compare. */
  serverNodeArgs: string[]
  serverEntry: string
}

const HELP = `usage: npm run bench -- [options]
  --quick                 small sizes, 1 run: a smoke check (~1-2 min)
  --runs N                runs per figure, each paired with its baseline (default 3)
  --size-mb N             short- and long-line file size (default 200)
  --memory-sizes-mb A,B   upload sizes for the peak-RSS figure (default 100,1024)
  --concurrency N         concurrent uploads (default 16) of --concurrent-size-mb (default 20)
  --durable-uploads N     small uploads per side for the durability figure (default 200)
  --http-seconds N        seconds of each metadata read per run, 1-s slices interleaved with /health (default 5)
  --connections N         autocannon connections (default 10)
  --batch-lines N         lines of the batch figure's batch (default 50000)
  --batch-answer-bytes N  size of each upstream answer (default 2048)
  --batch-runs N          runs of the batch figure per database (default 1: ~1-2 min each)
  --batch-db a,b          sqlite, postgres (default both; postgres only when TEST_DATABASE_URL is set)
  --only a,b              figure groups: ${GROUPS.join(', ')}
  --skip a,b              figure groups to leave out
  --data-dir DIR          keep generated data in DIR and reuse it on the next run
  --out DIR               where results-<timestamp>.json goes (default bench/out)
  --cpu-prof              run the servers under node --cpu-prof (profiles in <out>/profiles)
  --server-env K=V        extra environment for the server (repeatable)
  --server-node-arg F     extra node flag for the server, e.g. --server-node-arg=--max-semi-space-size=16 (repeatable)
  --server-entry PATH     the server to start (default dist/src/server.js): compare another build`

function positiveInt (name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(text)}`)
  return n
}

function groupList (name: string, text: string | undefined): Group[] | undefined {
  if (text === undefined) return undefined
  const names = text.split(',').map((g) => g.trim()).filter((g) => g !== '')
  for (const g of names) {
    if (!(GROUPS as readonly string[]).includes(g)) throw new Error(`--${name}: unknown group ${JSON.stringify(g)}; one of ${GROUPS.join(', ')}`)
  }
  return names as Group[]
}

function databaseList (text: string): Array<'sqlite' | 'postgres'> {
  const names = text.split(',').map((d) => d.trim()).filter((d) => d !== '')
  for (const d of names) {
    if (d !== 'sqlite' && d !== 'postgres') throw new Error(`--batch-db: unknown database ${JSON.stringify(d)}; sqlite or postgres`)
  }
  return names as Array<'sqlite' | 'postgres'>
}

export function parseOptions (argv: string[]): BenchOptions | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      help: { type: 'boolean' },
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      'size-mb': { type: 'string' },
      'memory-sizes-mb': { type: 'string' },
      concurrency: { type: 'string' },
      'concurrent-size-mb': { type: 'string' },
      'http-seconds': { type: 'string' },
      connections: { type: 'string' },
      'batch-lines': { type: 'string' },
      'batch-answer-bytes': { type: 'string' },
      'batch-runs': { type: 'string' },
      'batch-db': { type: 'string', default: 'sqlite,postgres' },
      only: { type: 'string' },
      skip: { type: 'string' },
      'data-dir': { type: 'string' },
      out: { type: 'string', default: 'bench/out' },
      'cpu-prof': { type: 'boolean', default: false },
      'durable-uploads': { type: 'string' },
      'server-env': { type: 'string', multiple: true, default: [] },
      'server-node-arg': { type: 'string', multiple: true, default: [] },
      'server-entry': { type: 'string', default: 'dist/src/server.js' }
    }
  })
  if (values.help === true) {
    console.log(HELP)
    return null
  }
  const quick = values.quick
  const memorySizes = values['memory-sizes-mb']?.split(',').map((n) => positiveInt('memory-sizes-mb', n.trim(), 0))
  const only = groupList('only', values.only) ?? [...GROUPS]
  const skip = groupList('skip', values.skip) ?? []
  const serverEnv: Record<string, string> = {}
  for (const pair of values['server-env']) {
    const at = pair.indexOf('=')
    if (at < 1) throw new Error(`--server-env expects K=V, got ${JSON.stringify(pair)}`)
    serverEnv[pair.slice(0, at)] = pair.slice(at + 1)
  }
  return {
    quick,
    runs: positiveInt('runs', values.runs, quick ? 1 : 3),
    sizeMiB: positiveInt('size-mb', values['size-mb'], quick ? 20 : 200),
    memorySizesMiB: memorySizes ?? (quick ? [20, 100] : [100, 1024]),
    concurrency: positiveInt('concurrency', values.concurrency, 16),
    concurrentSizeMiB: positiveInt('concurrent-size-mb', values['concurrent-size-mb'], quick ? 2 : 20),
    durabilityUploads: positiveInt('durable-uploads', values['durable-uploads'], quick ? 50 : 200),
    httpSeconds: positiveInt('http-seconds', values['http-seconds'], quick ? 2 : 5),
    httpConnections: positiveInt('connections', values.connections, 10),
    batchLines: positiveInt('batch-lines', values['batch-lines'], quick ? 5000 : 50_000),
    batchAnswerBytes: positiveInt('batch-answer-bytes', values['batch-answer-bytes'], 2048),
    batchRuns: positiveInt('batch-runs', values['batch-runs'], 1),
    batchDatabases: databaseList(values['batch-db']),
    groups: only.filter((g) => !skip.includes(g)),
    dataDir: values['data-dir'],
    outDir: values.out,
    cpuProf: values['cpu-prof'],
    serverEnv,
    serverNodeArgs: values['server-node-arg'],
    serverEntry: values['server-entry']
  }
}
