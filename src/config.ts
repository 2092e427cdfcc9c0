import { Value } from 'typebox/value'
import { ConfigSchema, type Config } from '../schemas/config.js'
import path from 'node:path'
import { describeConnectionString } from './metadata/postgres-file-store.js'
import type { BlobStoreConfig } from './storage/create-blob-store.js'
import type { BatchValidatorOptions } from './jsonl/batch-validator.js'
import { singleUpstream, upstreamsByModel, type UpstreamMap } from './batches/upstream-url.js'

export class ConfigError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

interface PropertySchema { type?: string, anyOf?: Array<{ const?: unknown }>, secret?: boolean }

/**
 * Strict text → value conversion. TypeBox's Value.Convert would turn `1.5` into an
 * integer 1 and `yes` into something; a setting that is not exactly a number or a
 * boolean must stop start-up instead of being guessed.
 */
function convert (schema: PropertySchema, text: string): unknown {
  if (schema.type === 'integer') return /^-?\d+$/.test(text) ? Number(text) : text
  if (schema.type === 'boolean') {
    if (text === 'true' || text === '1') return true
    if (text === 'false' || text === '0') return false
  }
  return text
}

/** One problem, for the start-up message: a secret's value is never echoed (stderr ends up in logs). */
export function describeProblem (name: string, schema: PropertySchema, text: string | undefined, fallback: string): string {
  const allowed = schema.anyOf?.map((option) => option.const).filter((c) => c !== undefined)
  const why = allowed !== undefined && allowed.length > 0 ? `must be one of ${allowed.join(', ')}` : fallback
  if (schema.secret === true) return `${name} (a secret, its value not shown): ${why}`
  return `${name}=${JSON.stringify(text ?? '')}: ${why}`
}

/**
 * Reads the settings once from `env` (never at import time). Empty strings count as
 * unset, so `FOO=` in a compose file falls back to the default. A bad value throws a
 * ConfigError naming the variable, which stops start-up.
 */
export function loadConfig (env: NodeJS.ProcessEnv = process.env): Config {
  const properties = ConfigSchema.properties as Record<string, PropertySchema>
  const texts: Record<string, string> = {}
  const raw: Record<string, unknown> = {}
  for (const [name, schema] of Object.entries(properties)) {
    const text = env[name]?.trim()
    if (text === undefined || text === '') continue
    texts[name] = text
    raw[name] = convert(schema, text)
  }
  const value = Value.Default(ConfigSchema, raw)
  if (!Value.Check(ConfigSchema, value)) {
    const problems = new Map<string, string>()
    for (const error of Value.Errors(ConfigSchema, value)) {
      const name = error.instancePath.split('/')[1] ?? ''
      const schema = properties[name]
      if (schema !== undefined && !problems.has(name)) problems.set(name, describeProblem(name, schema, texts[name], error.message))
    }
    throw new ConfigError(`invalid configuration: ${[...problems.values()].join('; ')}`)
  }
  const config = value as Config
  if (config.STORAGE_DRIVER === 's3' && config.S3_BUCKET === undefined) {
    throw new ConfigError('invalid configuration: S3_BUCKET is required when STORAGE_DRIVER=s3')
  }
  if (config.BATCH_MAX_FILE_BYTES > config.MAX_FILE_BYTES) {
    throw new ConfigError('invalid configuration: BATCH_MAX_FILE_BYTES must not exceed MAX_FILE_BYTES')
  }
  // An unfinished upload younger than the grace is never aborted; one older than the longest
  // an upload may run is certainly abandoned. Only then is the sweep safe.
  if (config.RECONCILE_INTERVAL_MS > 0 && config.RECONCILE_GRACE_MS <= config.UPLOAD_MAX_DURATION_MS) {
    throw new ConfigError(`invalid configuration: RECONCILE_GRACE_MS (${config.RECONCILE_GRACE_MS}) must exceed UPLOAD_MAX_DURATION_MS (${config.UPLOAD_MAX_DURATION_MS}), or reconciliation would abort uploads still running; or set RECONCILE_INTERVAL_MS=0`)
  }
  // Checked at start-up, not at the first batch: a typo must stop the replica.
  upstreamMap(config)
  return config
}

/** The storage driver's settings, for the app and the CLI alike. */
export function blobStoreOptions (config: Config): BlobStoreConfig {
  return {
    driver: config.STORAGE_DRIVER,
    dataDir: config.DATA_DIR,
    s3: {
      endpoint: config.S3_ENDPOINT,
      region: config.S3_REGION,
      bucket: config.S3_BUCKET,
      accessKeyId: config.S3_ACCESS_KEY_ID,
      secretAccessKey: config.S3_SECRET_ACCESS_KEY,
      forcePathStyle: config.S3_FORCE_PATH_STYLE,
      partSizeBytes: config.S3_PART_SIZE_BYTES,
      connectTimeoutMs: config.S3_CONNECT_TIMEOUT_MS,
      requestTimeoutMs: config.S3_REQUEST_TIMEOUT_MS
    }
  }
}

/** The database and the store, for messages naming the pair (never a password). */
export function describeDeployment (config: Config): { database: string, storage: string } {
  const database = config.DATABASE_URL !== undefined
    ? `PostgreSQL ${describeConnectionString(config.DATABASE_URL)}`
    : `SQLite ${path.resolve(config.SQLITE_PATH ?? path.join(config.DATA_DIR, 'files.db'))}`
  const storage = config.STORAGE_DRIVER === 's3'
    ? `s3://${config.S3_BUCKET ?? ''}/${config.STORAGE_PREFIX} at ${config.S3_ENDPOINT ?? `AWS S3 (${config.S3_REGION})`}`
    : `${path.resolve(config.DATA_DIR, 'blobs', config.STORAGE_PREFIX)} (DATA_DIR=${config.DATA_DIR})`
  return { database, storage }
}

export function allowedBatchUrls (config: Config): string[] {
  return config.BATCH_ALLOWED_URLS.split(',').map((url) => url.trim()).filter((url) => url !== '')
}

/**
 * The validator settings, built in one place: the upload pipeline and the CLI
 * (`files-api validate`) must give the same verdicts for the same environment.
 */
export function batchValidatorOptions (config: Config): BatchValidatorOptions {
  return {
    maxRequests: config.BATCH_MAX_REQUESTS,
    maxLineBytes: config.BATCH_MAX_LINE_BYTES,
    allowedUrls: allowedBatchUrls(config),
    modelPolicy: config.BATCH_MODEL_POLICY
  }
}

/**
 * The upstreams batches run against, or null when none is set (creating a batch is then
 * refused, naming UPSTREAM_BASE_URL). UPSTREAM_MODELS routes models to their own servers,
 * UPSTREAM_BASE_URL serves the rest. A malformed value is a ConfigError naming the variable.
 */
export function upstreamMap (config: Config): UpstreamMap | null {
  const fallback = config.UPSTREAM_BASE_URL
  try {
    if (config.UPSTREAM_MODELS === undefined) return fallback === undefined ? null : singleUpstream(fallback)
    const models: Record<string, string> = {}
    for (const pair of config.UPSTREAM_MODELS.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
      const eq = pair.indexOf('=')
      const model = eq < 0 ? '' : pair.slice(0, eq).trim()
      if (model === '') throw new Error(`UPSTREAM_MODELS entry ${JSON.stringify(pair)} is not model=baseUrl`)
      if (Object.hasOwn(models, model)) throw new Error(`UPSTREAM_MODELS names ${JSON.stringify(model)} twice`)
      models[model] = pair.slice(eq + 1).trim()
    }
    return upstreamsByModel(models, fallback)
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    throw new ConfigError(`invalid configuration: ${message.startsWith('UPSTREAM') ? message : `UPSTREAM_BASE_URL/UPSTREAM_MODELS: ${message}`}`)
  }
}
