import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { BatchError } from '../schemas/batch-error.js'
import { UPLOAD_OUTCOMES, type UploadOutcome } from '../src/upload/outcome.js'

export interface UploadRecord {
  outcome: UploadOutcome
  /** Stored uploads: their purpose and size. */
  purpose?: string
  bytes?: number
  /** Refused batch files: the listed errors (at most 100) and the count of all of them. */
  lineErrors?: { errors: readonly BatchError[], count: number }
}

/** What the routes and drivers report; the only door to prom-client. */
export interface ServiceMetrics {
  readonly registry: Registry
  recordUpload: (upload: UploadRecord) => void
  recordDownload: (bytes: number) => void
  recordStorageError: (operation: string) => void
  /** One reconciliation run: null when it was free to repair, else why it refused. */
  recordReconciliation: (refusal: string | null) => void
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: ServiceMetrics
  }
}

/** Uploads of hundreds of MiB take minutes: the default buckets would end at 10 s. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]

/** Requests that matched no route share one label, so scanners cannot grow the series without bound. */
const UNMATCHED_ROUTE = 'unmatched'

/**
 * Prometheus metrics in a registry of this app instance (never prom-client's global
 * one: tests build several apps in one process). The exposition route is
 * src/routes/metrics.ts; this plugin only collects.
 */
async function metricsPlugin (app: FastifyInstance): Promise<void> {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })

  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from the request\'s arrival to the end of its response, by route pattern, method and status.',
    labelNames: ['route', 'method', 'status_code'] as const,
    buckets: DURATION_BUCKETS,
    registers: [registry]
  })
  const uploadedBytes = new Counter({
    name: 'files_api_uploaded_bytes_total',
    help: 'Bytes of stored uploads, by purpose.',
    labelNames: ['purpose'] as const,
    registers: [registry]
  })
  const downloadedBytes = new Counter({
    name: 'files_api_downloaded_bytes_total',
    help: 'Bytes of file content sent in completed responses.',
    registers: [registry]
  })
  const uploads = new Counter({
    name: 'files_api_uploads_total',
    help: 'Uploads by outcome: stored, invalid, too_large, quota_exceeded, aborted, storage_error, other.',
    labelNames: ['outcome'] as const,
    registers: [registry]
  })
  const lineErrorsByCode = new Counter({
    name: 'files_api_batch_validation_errors_total',
    help: 'BatchErrors listed in refused batch files (at most 100 per file), by code.',
    labelNames: ['code'] as const,
    registers: [registry]
  })
  const lineErrors = new Counter({
    name: 'files_api_batch_validation_errors_all_total',
    help: 'Every error found in refused batch files (their error_count), listed or not.',
    registers: [registry]
  })
  const storageErrors = new Counter({
    name: 'files_api_storage_errors_total',
    help: 'Failed blob storage operations, by operation (put, get, head, delete, list, abort_incomplete, check).',
    labelNames: ['operation'] as const,
    registers: [registry]
  })
  const reconcileRuns = new Counter({
    name: 'files_api_reconcile_runs_total',
    help: 'Reconciliation runs of this replica, by outcome: repaired (or nothing to repair), refused.',
    labelNames: ['outcome'] as const,
    registers: [registry]
  })
  const reconcileRefusals = new Counter({
    name: 'files_api_reconcile_refusals_total',
    help: 'Reconciliation runs that repaired nothing because it looked unsafe, by reason (storage_empty, storage_foreign, database_empty, too_many_removals).',
    labelNames: ['reason'] as const,
    registers: [registry]
  })
  reconcileRuns.inc({ outcome: 'repaired' }, 0)
  reconcileRuns.inc({ outcome: 'refused' }, 0)
  // Every outcome is exposed from the start, so rate() sees the first refusal too.
  for (const outcome of UPLOAD_OUTCOMES) uploads.inc({ outcome }, 0)

  app.decorate('metrics', {
    registry,
    recordUpload (upload) {
      uploads.inc({ outcome: upload.outcome })
      if (upload.outcome === 'stored' && upload.purpose !== undefined && upload.bytes !== undefined) {
        uploadedBytes.inc({ purpose: upload.purpose }, upload.bytes)
      }
      if (upload.lineErrors !== undefined) {
        lineErrors.inc(upload.lineErrors.count)
        for (const error of upload.lineErrors.errors) lineErrorsByCode.inc({ code: error.code })
      }
    },
    recordDownload (bytes) { downloadedBytes.inc(bytes) },
    recordStorageError (operation) { storageErrors.inc({ operation }) },
    recordReconciliation (refusal) {
      reconcileRuns.inc({ outcome: refusal === null ? 'repaired' : 'refused' })
      if (refusal !== null) reconcileRefusals.inc({ reason: refusal })
    }
  } satisfies ServiceMetrics)

  app.addHook('onResponse', async (request, reply) => {
    duration.observe({
      route: request.routeOptions.url ?? UNMATCHED_ROUTE,
      method: request.method,
      status_code: String(reply.statusCode)
    }, reply.elapsedTime / 1000)
  })
}

export default fp(metricsPlugin, { name: 'metrics', fastify: '5.x' })
