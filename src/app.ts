import type { Server } from 'node:http'
import Fastify, { type FastifyHttpOptions, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Config } from '../schemas/config.js'
import authPlugin from '../plugins/auth.js'
import batchWorkerPlugin from '../plugins/batch-worker.js'
import batchesPlugin from '../plugins/batches.js'
import checkPoolPlugin from '../plugins/check-pool.js'
import corsPlugin from '../plugins/cors.js'
import errorsPlugin, { frameworkErrorHandler } from '../plugins/errors.js'
import filesPlugin from '../plugins/files.js'
import gracefulShutdownPlugin from '../plugins/graceful-shutdown.js'
import jsonBodyPlugin from '../plugins/json-body.js'
import lingeringClosePlugin from '../plugins/lingering-close.js'
import metadataPlugin from '../plugins/metadata.js'
import metricsPlugin from '../plugins/metrics.js'
import openApiPlugin from '../plugins/openapi.js'
import overloadPlugin from '../plugins/overload.js'
import rateLimitPlugin from '../plugins/rate-limit.js'
import reconcilerPlugin from '../plugins/reconciler.js'
import requestIdPlugin, { requestIdFor } from '../plugins/request-id.js'
import securityHeadersPlugin from '../plugins/security-headers.js'
import storagePlugin from '../plugins/storage.js'
import sweeperPlugin from '../plugins/sweeper.js'
import uploadsPlugin from '../plugins/uploads.js'
import type { ApiKeyTable } from './api-keys.js'
import { allowedBatchUrls, batchValidatorOptions, blobStoreOptions, describeDeployment, upstreamMap } from './config.js'
import type { UpstreamClients } from './batches/upstream-client.js'
import { clientErrorHandler } from './http/client-error.js'
import { packageVersion } from './version.js'
import type { FileStore } from './metadata/file-store.js'
import { createFileStore } from './metadata/create-file-store.js'
import batchesRoutes from './routes/batches.js'
import consoleRoutes from './routes/console.js'
import filesRoutes from './routes/files.js'
import healthRoutes from './routes/health.js'
import metricsRoutes from './routes/metrics.js'
import uploadsRoutes from './routes/uploads.js'
import type { BlobStore } from './storage/blob-store.js'
import { createBlobStore } from './storage/create-blob-store.js'
import { observeBlobStore, type StorageOperation } from './storage/observed-blob-store.js'
import type { CheckPool } from './upload/check-pool.js'
import { createQuotaGuard } from './upload/quota.js'
import { createUploadSlots } from './upload/upload-slots.js'

export interface BuildAppOptions {
  config: Config
  keys: ApiKeyTable
  /** Hand in ready drivers (tests); otherwise they are built from `config` and owned by the app. */
  blobStore?: BlobStore
  fileStore?: FileStore
  /** Hand in the batch engine's upstream clients (tests); otherwise made from `config`. */
  upstreamClients?: UpstreamClients
  /** Hand in a ready upload check pool (tests); otherwise one of UPLOAD_WORKER_THREADS workers is owned by the app. */
  checkPool?: CheckPool
  /** Clock in milliseconds (tests control expiry with it). */
  now?: () => number
  /** Pino logger options (tests hand in a stream), or false; the level defaults to LOG_LEVEL, the redaction always applies. */
  logger?: FastifyServerOptions['logger']
}

// Keys travel in Authorization (API keys, METRICS_TOKEN); they must never reach a log line.
// '*.headers.authorization': @fastify/multipart logs its busboy options, request headers
// included, at trace level.
const REDACT = {
  paths: ['req.headers.authorization', 'headers.authorization', '*.authorization', '*.headers.authorization'],
  censor: '[redacted]'
}

function loggerOptions (config: Config, logger: FastifyServerOptions['logger']): FastifyServerOptions['logger'] {
  if (logger === false) return false
  const base = { level: config.LOG_LEVEL, redact: REDACT }
  if (logger === undefined || logger === true) return base
  return { ...base, ...logger, redact: REDACT }
}

/** Routes that answer even under overload: probes and scrapes must report, not be shed. */
const OPERATIONS_ROUTES = ['/health', '/ready', '/metrics']

/** Longest path parameter (file ids are 31 characters); longer ones are refused by the router. */
const MAX_PARAM_LENGTH = 200

/** Fastify options shared by production and tests: the very same limits and logging rules. */
export function fastifyOptions (config: Config, logger: FastifyServerOptions['logger']): FastifyHttpOptions<Server> {
  return {
    // Requests Node's parser refuses still get an answer in OpenAI's error shape.
    clientErrorHandler,
    logger: loggerOptions(config, logger),
    // Request ids correlate log lines; a sane incoming x-request-id (from the gateway)
    // wins. Read by genReqId, not requestIdHeader, which would take any value unchecked.
    requestIdHeader: false,
    genReqId: requestIdFor,
    // JSON bodies are small here (uploads are multipart, streamed past this limit).
    bodyLimit: 1024 * 1024,
    // Slow clients: headers must arrive within HEADERS_TIMEOUT_MS (slowloris), and a
    // connection on which nothing moves for REQUEST_IDLE_TIMEOUT_MS is closed (a body that
    // stalls, the upload then abandoned). No limit on a whole request (requestTimeout 0,
    // Node's own default is 5 min): a large upload that keeps sending is never cut.
    connectionTimeout: config.REQUEST_IDLE_TIMEOUT_MS,
    requestTimeout: 0,
    keepAliveTimeout: config.KEEP_ALIVE_TIMEOUT_MS,
    http: {
      headersTimeout: config.HEADERS_TIMEOUT_MS,
      // Node checks headersTimeout only this often (30 s by default), which would let a
      // slowloris hold its socket up to twice the limit.
      connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(config.HEADERS_TIMEOUT_MS / 4)))
    },
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: frameworkErrorHandler(MAX_PARAM_LENGTH)
  }
}

/** Builds the whole service without listening (src/server.ts listens). */
export async function buildApp (options: BuildAppOptions): Promise<FastifyInstance> {
  const { config } = options
  const now = options.now ?? Date.now
  // Validation stays with Fastify's ajv (the TypeBox schemas are plain JSON Schema):
  // TypeBox's own compiler converts query strings lossily (`limit=1.5` became 1).
  const app = Fastify(fastifyOptions(config, options.logger))

  await app.register(requestIdPlugin)
  await app.register(lingeringClosePlugin, { maxBytes: config.LINGER_MAX_BYTES, timeoutMs: config.LINGER_TIMEOUT_MS })
  // Before every refusal (overload, auth, limits), so a permitted browser can read those too.
  await app.register(corsPlugin, { origins: config.CORS_ORIGINS })
  await app.register(errorsPlugin)
  await app.register(jsonBodyPlugin)
  await app.register(metricsPlugin)
  await app.register(overloadPlugin, {
    maxEventLoopDelayMs: config.OVERLOAD_MAX_EVENT_LOOP_DELAY_MS,
    maxHeapUsedBytes: config.OVERLOAD_MAX_HEAP_USED_BYTES,
    maxRssBytes: config.OVERLOAD_MAX_RSS_BYTES,
    retryAfterSeconds: config.OVERLOAD_RETRY_AFTER_SECONDS,
    exemptRoutes: OPERATIONS_ROUTES
  })
  await app.register(securityHeadersPlugin)
  await app.register(authPlugin, { keys: options.keys, ...(config.TRUSTED_PROJECT_HEADER === undefined ? {} : { trustedProjectHeader: config.TRUSTED_PROJECT_HEADER }) })
  await app.register(rateLimitPlugin, { max: config.RATE_LIMIT_MAX, windowMs: config.RATE_LIMIT_WINDOW_MS })
  await app.register(gracefulShutdownPlugin, { timeoutMs: config.SHUTDOWN_TIMEOUT_MS })
  const storageFailed = (operation: StorageOperation): void => { app.metrics.recordStorageError(operation) }
  await app.register(storagePlugin, {
    store: options.blobStore === undefined ? undefined : observeBlobStore(options.blobStore, storageFailed),
    create: async () => observeBlobStore(await createBlobStore(blobStoreOptions(config)), storageFailed)
  })
  await app.register(metadataPlugin, {
    store: options.fileStore,
    create: async () => createFileStore(config, {
      onPoolError: (err) => { app.log.warn({ err }, 'an idle PostgreSQL connection failed; the pool replaces it') }
    })
  })
  await app.register(filesPlugin, { now })
  await app.register(uploadsPlugin, {
    limits: {
      maxBytes: config.UPLOAD_MAX_BYTES,
      batchMaxBytes: config.BATCH_MAX_FILE_BYTES,
      maxParts: config.UPLOAD_MAX_PARTS,
      maxPendingPerProject: config.PROJECT_MAX_PENDING_UPLOADS
    },
    storagePrefix: config.STORAGE_PREFIX,
    maxDurationMs: config.UPLOAD_MAX_DURATION_MS,
    now
  })
  const allowedUrls = allowedBatchUrls(config)
  const upstreams = upstreamMap(config)
  // A batch created here is planned at once by this replica's worker (if it runs one);
  // any other worker finds it at its next poll. Looked up late: the worker registers below.
  await app.register(batchesPlugin, { upstreams, allowedUrls, maxLineBytes: config.BATCH_MAX_LINE_BYTES, onCreated: () => { app.batchEngine?.wake() } })
  await app.register(openApiPlugin, { version: packageVersion() })

  await app.register(checkPoolPlugin, { threads: config.UPLOAD_WORKER_THREADS, ...(options.checkPool === undefined ? {} : { pool: options.checkPool }) })
  // The upload pipeline, shared by `POST /files` and the completion of an upload in parts
  // (which has limits of its own, the upload service's).
  const pipeline = {
    checkPool: app.checkPool,
    validator: batchValidatorOptions(config),
    batchExpiresAfterSeconds: config.BATCH_EXPIRES_AFTER_SECONDS,
    storagePrefix: config.STORAGE_PREFIX,
    maxDurationMs: config.UPLOAD_MAX_DURATION_MS,
    now
  }
  const upload = { limits: { maxFileBytes: config.MAX_FILE_BYTES, batchMaxFileBytes: config.BATCH_MAX_FILE_BYTES }, ...pipeline }

  await app.register(sweeperPlugin, { intervalMs: config.EXPIRY_SWEEP_INTERVAL_MS, batchSize: config.EXPIRY_SWEEP_BATCH })
  // The wall clock, not the injectable one: the grace period is compared with the times
  // storage wrote (file mtimes, S3 LastModified), and a clock set ahead would make every
  // upload in flight look old enough to remove.
  await app.register(reconcilerPlugin, {
    intervalMs: config.RECONCILE_INTERVAL_MS,
    graceMs: config.RECONCILE_GRACE_MS,
    prefix: config.STORAGE_PREFIX,
    maxRemovals: config.RECONCILE_MAX_REMOVALS,
    now: Date.now,
    ...describeDeployment(config)
  })
  await app.register(batchWorkerPlugin, {
    enabled: config.BATCH_WORKER,
    upstreams,
    engine: {
      concurrency: config.BATCH_CONCURRENCY,
      chunkLines: config.BATCH_CHUNK_LINES,
      // A chunk is read with one ranged read; this keeps that read small whatever the lines' size.
      chunkBytes: 8 * 1024 * 1024,
      leaseTtlMs: config.BATCH_LEASE_TTL_MS,
      pollIntervalMs: config.BATCH_POLL_INTERVAL_MS,
      upstreamCeiling: config.UPSTREAM_MAX_CONCURRENCY,
      maxLineBytes: config.BATCH_MAX_LINE_BYTES,
      backoff: { baseMs: config.BATCH_RETRY_BASE_MS, capMs: config.BATCH_RETRY_MAX_MS }
    },
    client: {
      ...(config.UPSTREAM_API_KEY === undefined ? {} : { apiKey: config.UPSTREAM_API_KEY }),
      connectTimeoutMs: config.UPSTREAM_CONNECT_TIMEOUT_MS,
      headersTimeoutMs: config.UPSTREAM_HEADERS_TIMEOUT_MS,
      bodyTimeoutMs: config.UPSTREAM_BODY_TIMEOUT_MS,
      maxResponseBytes: config.UPSTREAM_MAX_RESPONSE_BYTES
    },
    storagePrefix: config.STORAGE_PREFIX,
    now,
    ...(options.upstreamClients === undefined ? {} : { clients: options.upstreamClients })
  })
  const quota = createQuotaGuard({ maxFiles: config.PROJECT_MAX_FILES, maxBytes: config.PROJECT_MAX_BYTES }, { fileStore: app.fileStore, now })
  await app.register(healthRoutes)
  await app.register(consoleRoutes)
  await app.register(metricsRoutes, config.METRICS_TOKEN === undefined ? {} : { token: config.METRICS_TOKEN })
  const admission = { slots: createUploadSlots(config.MAX_CONCURRENT_UPLOADS), busyRetryAfterSeconds: config.OVERLOAD_RETRY_AFTER_SECONDS }
  await app.register(filesRoutes, { prefix: '/v1', envelope: false, upload, quota, ...admission })
  await app.register(filesRoutes, { prefix: '/api/v1', envelope: true, upload, quota, ...admission })
  await app.register(batchesRoutes, { prefix: '/v1', envelope: false, allowedUrls })
  await app.register(batchesRoutes, { prefix: '/api/v1', envelope: true, allowedUrls })
  await app.register(uploadsRoutes, { prefix: '/v1', envelope: false, pipeline, quota, ...admission })
  await app.register(uploadsRoutes, { prefix: '/api/v1', envelope: true, pipeline, quota, ...admission })
  return app
}
