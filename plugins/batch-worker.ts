import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { sql } from 'kysely'
import { Counter, Gauge, Histogram } from 'prom-client'
import { createBatchEngine, type BatchEngine, type BatchEngineOptions } from '../src/batches/engine.js'
import { createUpstreamClients, DEFAULT_UPSTREAM_CLIENT_OPTIONS, type UpstreamClientOptions, type UpstreamClients } from '../src/batches/upstream-client.js'
import type { UpstreamMap } from '../src/batches/upstream-url.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** This replica's batch worker, or null when BATCH_WORKER=false. */
    batchEngine: BatchEngine | null
  }
}

export interface BatchWorkerPluginOptions {
  /** False for API-only replicas: no engine, nothing claimed here. */
  enabled: boolean
  upstreams: UpstreamMap | null
  engine: BatchEngineOptions
  client: Omit<UpstreamClientOptions, 'connections' | 'keepAliveTimeoutMs'>
  storagePrefix: string
  now: () => number
  /** Hand in clients (tests); otherwise they are made here and closed with the app. */
  clients?: UpstreamClients
}

/** Upstream latencies run from milliseconds (a cache hit) to minutes (a long generation). */
const LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]

/**
 * Starts the batch engine (src/batches/engine.ts) when the app is ready and stops it
 * when the app closes: leases handed back before the stores close. Its metrics join
 * the app's registry.
 */
async function batchWorkerPlugin (app: FastifyInstance, options: BatchWorkerPluginOptions): Promise<void> {
  if (!options.enabled) {
    app.decorate('batchEngine', null)
    return
  }
  const registers = [app.metrics.registry]
  const sent = new Counter({ name: 'files_api_batch_upstream_requests_total', help: 'Requests sent to upstreams, by upstream base URL.', labelNames: ['upstream'] as const, registers })
  const answers = new Histogram({
    name: 'files_api_batch_upstream_duration_seconds',
    help: 'Upstream request latency, by upstream and outcome (HTTP status, or the transport error code).',
    labelNames: ['upstream', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers
  })
  const retries = new Counter({ name: 'files_api_batch_retries_total', help: 'Lines scheduled for another try, by upstream and reason (status or transport error code).', labelNames: ['upstream', 'reason'] as const, registers })
  const recorded = new Counter({ name: 'files_api_batch_lines_total', help: 'Line results recorded by this replica, by kind (output, error).', labelNames: ['kind'] as const, registers })
  recorded.inc({ kind: 'output' }, 0)
  recorded.inc({ kind: 'error' }, 0)

  const owned = options.clients === undefined
  const clients = options.clients ?? createUpstreamClients({
    ...DEFAULT_UPSTREAM_CLIENT_OPTIONS,
    ...options.client,
    // Sockets enough for every request in flight to one upstream.
    connections: options.engine.concurrency
  })
  const db = app.fileStore.batchDb
  const engine = createBatchEngine({
    db,
    dialect: app.fileStore.dialect,
    blobStore: app.blobStore,
    fileService: app.files,
    upstreams: options.upstreams,
    clients,
    storagePrefix: options.storagePrefix,
    now: options.now,
    log: app.log.child({ component: 'batch-worker' }),
    observer: {
      sent: (upstream) => { sent.inc({ upstream }) },
      answered: (upstream, outcome, seconds) => { answers.observe({ upstream, outcome }, seconds) },
      retried: (upstream, reason) => { retries.inc({ upstream, reason }) },
      recorded: (kind) => { recorded.inc({ kind }) }
    }
  }, options.engine)

  new Gauge({
    name: 'files_api_batch_requests_in_flight',
    help: 'Upstream requests this replica has in flight (at most BATCH_CONCURRENCY).',
    registers,
    collect () { this.set(engine.inFlight()) }
  })
  new Gauge({
    name: 'files_api_batch_chunks_held',
    help: 'Chunks this replica holds a lease on.',
    registers,
    collect () { this.set(engine.heldChunks()) }
  })
  new Gauge({
    name: 'files_api_batch_upstream_concurrency_limit',
    help: 'This replica\'s adaptive limit of requests in flight to each upstream (at most its share of UPSTREAM_MAX_CONCURRENCY).',
    labelNames: ['upstream'] as const,
    registers,
    collect () {
      for (const l of engine.upstreamLimits()) this.set({ upstream: l.upstream }, l.limit)
    }
  })
  new Gauge({
    name: 'files_api_batch_lines_queued',
    help: 'Lines of queued chunks waiting for a replica, in the whole deployment (from the metadata database).',
    registers,
    async collect () {
      const { rows } = await sql<{ n: number | string | null }>`select sum(line_end - line_start) as n from batch_chunks where state = 'queued'`.execute(db)
      this.set(Number(rows[0]?.n ?? 0))
    }
  })

  app.decorate('batchEngine', engine)
  app.addHook('onReady', async () => { engine.start() })
  // preClose: before the stores' onClose hooks, so the leases go back while the database is there.
  app.addHook('preClose', async () => {
    await engine.stop()
    if (owned) await clients.close()
  })
}

export default fp(batchWorkerPlugin, { name: 'batch-worker', fastify: '5.x', dependencies: ['metadata', 'storage', 'files', 'metrics'] })
