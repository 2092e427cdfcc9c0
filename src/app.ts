import path from 'node:path'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Config } from '../schemas/config.js'
import authPlugin from '../plugins/auth.js'
import errorsPlugin from '../plugins/errors.js'
import metadataPlugin from '../plugins/metadata.js'
import openApiPlugin from '../plugins/openapi.js'
import reconcilerPlugin from '../plugins/reconciler.js'
import securityHeadersPlugin from '../plugins/security-headers.js'
import storagePlugin from '../plugins/storage.js'
import sweeperPlugin from '../plugins/sweeper.js'
import type { ApiKeyTable } from './api-keys.js'
import { batchValidatorOptions } from './config.js'
import { createFileIdFactory } from './ids.js'
import { packageVersion } from './version.js'
import type { FileStore } from './metadata/file-store.js'
import { createSqliteFileStore } from './metadata/sqlite-file-store.js'
import filesRoutes from './routes/files.js'
import healthRoutes from './routes/health.js'
import type { BlobStore } from './storage/blob-store.js'
import { createBlobStore } from './storage/create-blob-store.js'

export interface BuildAppOptions {
  config: Config
  keys: ApiKeyTable
  /** Hand in ready drivers (tests); otherwise they are built from `config` and owned by the app. */
  blobStore?: BlobStore
  fileStore?: FileStore
  /** Clock in milliseconds (tests control expiry with it). */
  now?: () => number
  /** Pino logger options, or false; defaults follow LOG_LEVEL. */
  logger?: FastifyServerOptions['logger']
}

/** Fastify options shared by production and tests: the very same limits and logging rules. */
export function fastifyOptions (config: Config, logger: FastifyServerOptions['logger']): FastifyServerOptions {
  return {
    logger: logger ?? {
      level: config.LOG_LEVEL,
      // Keys travel in Authorization; they must never reach a log line.
      redact: { paths: ['req.headers.authorization', 'headers.authorization', '*.authorization'], censor: '[redacted]' }
    },
    // Request ids correlate log lines; an incoming x-request-id (from the gateway) wins.
    requestIdHeader: 'x-request-id',
    genReqId: () => crypto.randomUUID(),
    // JSON bodies are small here (uploads are multipart, streamed past this limit).
    bodyLimit: 1024 * 1024,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 }
  }
}

/** Builds the whole service without listening (src/server.ts listens). */
export async function buildApp (options: BuildAppOptions): Promise<FastifyInstance> {
  const { config } = options
  const now = options.now ?? Date.now
  // Validation stays with Fastify's ajv (the TypeBox schemas are plain JSON Schema):
  // TypeBox's own compiler converts query strings lossily (`limit=1.5` became 1).
  const app = Fastify(fastifyOptions(config, options.logger))

  await app.register(errorsPlugin)
  await app.register(securityHeadersPlugin)
  await app.register(authPlugin, { keys: options.keys })
  await app.register(storagePlugin, {
    store: options.blobStore,
    create: async () => createBlobStore({
      driver: config.STORAGE_DRIVER,
      dataDir: config.DATA_DIR,
      s3: {
        endpoint: config.S3_ENDPOINT,
        region: config.S3_REGION,
        bucket: config.S3_BUCKET,
        accessKeyId: config.S3_ACCESS_KEY_ID,
        secretAccessKey: config.S3_SECRET_ACCESS_KEY,
        forcePathStyle: config.S3_FORCE_PATH_STYLE,
        partSizeBytes: config.S3_PART_SIZE_BYTES
      }
    })
  })
  await app.register(metadataPlugin, {
    store: options.fileStore,
    create: async () => createSqliteFileStore({ filename: config.SQLITE_PATH ?? path.join(config.DATA_DIR, 'files.db') })
  })
  await app.register(openApiPlugin, { version: packageVersion() })

  const upload = {
    limits: { maxFileBytes: config.MAX_FILE_BYTES, batchMaxFileBytes: config.BATCH_MAX_FILE_BYTES },
    validator: batchValidatorOptions(config),
    batchExpiresAfterSeconds: config.BATCH_EXPIRES_AFTER_SECONDS,
    newFileId: createFileIdFactory(now),
    now
  }
  await app.register(sweeperPlugin, { intervalMs: config.EXPIRY_SWEEP_INTERVAL_MS, batchSize: config.EXPIRY_SWEEP_BATCH, now })
  await app.register(reconcilerPlugin, { intervalMs: config.RECONCILE_INTERVAL_MS, graceMs: config.RECONCILE_GRACE_MS, now })
  await app.register(healthRoutes)
  await app.register(filesRoutes, { prefix: '/v1', envelope: false, upload })
  await app.register(filesRoutes, { prefix: '/api/v1', envelope: true, upload })
  return app
}
