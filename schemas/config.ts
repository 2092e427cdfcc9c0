import Type, { type Static } from 'typebox'
import { DEFAULT_BATCH_URLS } from '../src/jsonl/batch-validator.js'

const MiB = 1024 * 1024
const ByteCount = (def: number, description: string) =>
  Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, default: def, description })

/**
 * Every setting of the service, named as its environment variable. Read once at start
 * (src/config.ts) and passed down; docs/configuration.md's settings table follows this schema.
 * `secret: true` marks a value never to be shown: config errors name the variable only.
 */
export const ConfigSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000, description: 'TCP port to listen on.' }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1', description: 'Address to bind; `0.0.0.0` in containers.' }),
  DATA_DIR: Type.String({ minLength: 1, default: './data', description: 'Folder for the fs blobs, the SQLite database and the generated key.' }),
  API_KEYS: Type.Optional(Type.String({
    secret: true,
    description: 'Comma-separated `key=project` pairs (a bare `key` belongs to project `default`). Unset: a key is generated into DATA_DIR/api-key.'
  })),
  STORAGE_DRIVER: Type.Union([Type.Literal('fs'), Type.Literal('s3')], { default: 'fs', description: '`fs` (local disk under DATA_DIR/blobs) or `s3`.' }),
  S3_ENDPOINT: Type.Optional(Type.String({ minLength: 1, description: 'S3-compatible endpoint URL (MinIO, R2, SeaweedFS…); unset for AWS.' })),
  S3_REGION: Type.String({ minLength: 1, default: 'us-east-1', description: 'S3 region.' }),
  S3_BUCKET: Type.Optional(Type.String({ minLength: 1, description: 'Bucket for the file objects (required with STORAGE_DRIVER=s3).' })),
  S3_ACCESS_KEY_ID: Type.Optional(Type.String({ minLength: 1, description: 'S3 access key id; unset: the AWS SDK default chain.' })),
  S3_SECRET_ACCESS_KEY: Type.Optional(Type.String({ minLength: 1, secret: true, description: 'S3 secret access key.' })),
  S3_FORCE_PATH_STYLE: Type.Optional(Type.Boolean({ description: 'Path-style addressing; defaults to true when S3_ENDPOINT is set.' })),
  S3_PART_SIZE_BYTES: Type.Integer({ minimum: 5 * MiB, maximum: 5 * 1024 * MiB, default: 8 * MiB, description: 'Multipart upload part size.' }),
  S3_CONNECT_TIMEOUT_MS: Type.Integer({ minimum: 1, default: 5000, description: 'Longest wait for a TCP connection to S3.' }),
  S3_REQUEST_TIMEOUT_MS: Type.Integer({
    minimum: 1, default: 60000,
    description: 'Longest an S3 request may take until S3 answers (a part upload included), and longest an S3 connection may stay silent; the SDK retries twice.'
  }),
  MAX_FILE_BYTES: ByteCount(512 * MiB, 'Largest upload of any purpose, in bytes.'),
  BATCH_MAX_FILE_BYTES: ByteCount(500 * MiB, 'Largest batch file, in bytes.'),
  BATCH_MAX_REQUESTS: Type.Integer({ minimum: 1, default: 50000, description: 'Most request lines in one batch file.' }),
  BATCH_MAX_LINE_BYTES: ByteCount(6 * MiB, 'Longest line of a batch file, in bytes.'),
  BATCH_MODEL_POLICY: Type.Union([Type.Literal('warn'), Type.Literal('reject')], {
    default: 'warn', description: 'A line whose model differs from the first line\'s: a warning, or an error.'
  }),
  BATCH_ALLOWED_URLS: Type.String({
    minLength: 1,
    default: DEFAULT_BATCH_URLS.join(','),
    description: 'Comma-separated endpoints a batch line may target.'
  }),
  BATCH_EXPIRES_AFTER_SECONDS: Type.Integer({
    minimum: 0, maximum: 2592000, default: 2592000,
    description: 'Default lifetime of files with purpose batch (30 days); 0: never expire unless asked.'
  }),
  EXPIRY_SWEEP_INTERVAL_MS: Type.Integer({ minimum: 0, default: 60000, description: 'How often expired files are deleted; 0 turns the sweeper off.' }),
  EXPIRY_SWEEP_BATCH: Type.Integer({ minimum: 1, maximum: 10000, default: 500, description: 'Expired files deleted per database round trip.' }),
  RECONCILE_INTERVAL_MS: Type.Integer({
    minimum: 0, default: 3600000,
    description: 'How often orphan objects, dangling rows and unfinished uploads are repaired (also once at start-up); 0 turns all of it off.'
  }),
  RECONCILE_GRACE_MS: Type.Integer({
    minimum: 0, default: 7200000,
    description: 'Only objects, rows and unfinished uploads older than this are repaired; must exceed UPLOAD_MAX_DURATION_MS while reconciliation is on, so uploads in flight are never touched.'
  }),
  RECONCILE_MAX_REMOVALS: Type.Integer({
    minimum: 1, default: 100,
    description: 'Most objects plus rows one reconciliation may remove; a run that would remove more repairs nothing and reports a refusal until an operator runs `files-api reconcile --yes`.'
  }),
  UPLOAD_MAX_DURATION_MS: Type.Integer({
    minimum: 1000, default: 3600000,
    description: 'Longest one upload may run; a longer one is aborted with 408 and nothing is stored.'
  }),
  STORAGE_PREFIX: Type.String({
    pattern: '^([A-Za-z0-9_-][A-Za-z0-9._-]*/)+$',
    default: 'files/',
    description: 'Key prefix of every object the service writes (ends with `/`); reconciliation and the abort sweep touch nothing outside it, so a bucket may be shared.'
  }),
  UPSTREAM_BASE_URL: Type.Optional(Type.String({
    pattern: '^https?://',
    description: 'OpenAI-compatible base URL batches run against (`http://vllm:8000/v1`); unset and no UPSTREAM_MODELS: creating a batch is refused.'
  })),
  UPSTREAM_API_KEY: Type.Optional(Type.String({ minLength: 1, secret: true, description: 'Bearer key sent to the upstream(s). A secret: never logged.' })),
  UPSTREAM_MODELS: Type.Optional(Type.String({
    minLength: 1,
    description: 'Comma-separated `model=baseUrl` pairs for deployments where each server serves one model; UPSTREAM_BASE_URL, when set, serves the other models.'
  })),
  UPSTREAM_MAX_CONCURRENCY: Type.Integer({
    minimum: 1, maximum: 100000, default: 256,
    description: 'Requests in flight to one upstream from the whole deployment: replicas share it equally; below it each adapts (AIMD) to the upstream\'s answers and latency.'
  }),
  UPSTREAM_CONNECT_TIMEOUT_MS: Type.Integer({ minimum: 1, default: 10000, description: 'Longest wait for a TCP connection to an upstream; then the request is retried.' }),
  UPSTREAM_HEADERS_TIMEOUT_MS: Type.Integer({ minimum: 1, default: 600000, description: 'Longest an upstream may take to start answering one request; then the request is retried.' }),
  UPSTREAM_BODY_TIMEOUT_MS: Type.Integer({ minimum: 1, default: 120000, description: 'Longest silence inside an upstream answer; then the request is retried.' }),
  UPSTREAM_MAX_RESPONSE_BYTES: ByteCount(16 * MiB, 'Largest upstream answer kept; a larger one is a final error for its line.'),
  BATCH_WORKER: Type.Boolean({ default: true, description: 'Run batches in this replica; `false` for API-only replicas (they still create, list and cancel batches).' }),
  BATCH_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 10000, default: 64, description: 'Upstream requests one replica has in flight at most (a crash re-sends at most these).' }),
  BATCH_CHUNK_LINES: Type.Integer({ minimum: 1, maximum: 100000, default: 100, description: 'Request lines per queued chunk: the unit replicas lease and hand back.' }),
  BATCH_LEASE_TTL_MS: Type.Integer({ minimum: 1000, default: 30000, description: 'A chunk lease lapses this long after its last heartbeat; a killed replica\'s chunks are taken over then.' }),
  BATCH_POLL_INTERVAL_MS: Type.Integer({ minimum: 10, default: 1000, description: 'How often an idle worker looks for work, and how soon a cancel is seen.' }),
  BATCH_RETRY_BASE_MS: Type.Integer({ minimum: 1, default: 500, description: 'First retry backoff (full jitter, doubling per attempt) for 408, 5xx and connection errors.' }),
  BATCH_RETRY_MAX_MS: Type.Integer({ minimum: 1, default: 60000, description: 'Longest backoff between two tries of one line; lines are retried until the batch expires.' }),
  SQLITE_PATH: Type.Optional(Type.String({ minLength: 1, description: 'SQLite database file; default DATA_DIR/files.db.' })),
  // The PostgreSQL store checks the rest of the URL itself, naming the variable, never its value.
  DATABASE_URL: Type.Optional(Type.String({
    pattern: '^postgres(ql)?://',
    secret: true,
    description: 'PostgreSQL connection URL (postgres://user:password@host:port/database); when set, metadata lives in PostgreSQL instead of SQLite. A secret: never logged.'
  })),
  DATABASE_POOL_MAX: Type.Integer({ minimum: 1, maximum: 1000, default: 10, description: 'PostgreSQL connections per process (replicas × this must fit max_connections).' }),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), {
    default: 'info', description: 'Pino log level.'
  }),
  HEADERS_TIMEOUT_MS: Type.Integer({
    minimum: 1, default: 30000,
    description: 'Longest a client may take to send a request\'s headers (Node\'s server.headersTimeout); then 408 and the connection is closed.'
  }),
  REQUEST_IDLE_TIMEOUT_MS: Type.Integer({
    minimum: 1, default: 60000,
    description: 'A connection on which nothing moves for this long is closed (an upload that keeps sending is never cut, however long it takes).'
  }),
  LINGER_MAX_BYTES: Type.Integer({
    minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 16 * MiB,
    description: 'After refusing a request whose body is still arriving, read and drop at most this many more bytes before closing, so the client reads the answer instead of a reset; 0: close at once.'
  }),
  LINGER_TIMEOUT_MS: Type.Integer({
    minimum: 0, default: 10000,
    description: 'Longest such a connection stays open after the answer; 0: close at once.'
  }),
  KEEP_ALIVE_TIMEOUT_MS: Type.Integer({
    minimum: 1, default: 72000,
    description: 'How long an idle keep-alive connection stays open; above the idle timeout of a gateway or load balancer in front.'
  }),
  SHUTDOWN_TIMEOUT_MS: Type.Integer({
    minimum: 0, default: 30000,
    description: 'On SIGTERM/SIGINT, how long uploads in flight may still finish; the rest are then abandoned (nothing stored) and answered 503.'
  }),
  OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ minimum: 0, default: 1000, description: 'Answer 503 while the mean event loop delay exceeds this; 0: no limit.' }),
  OVERLOAD_MAX_HEAP_USED_BYTES: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0, description: 'Answer 503 while the V8 heap in use exceeds this; 0: no limit.' }),
  OVERLOAD_MAX_RSS_BYTES: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0, description: 'Answer 503 while the resident set size exceeds this; 0: no limit.' }),
  OVERLOAD_RETRY_AFTER_SECONDS: Type.Integer({ minimum: 1, maximum: 3600, default: 10, description: 'Retry-After of overload answers.' }),
  UPLOAD_WORKER_THREADS: Type.Optional(Type.Integer({
    minimum: 0, maximum: 256,
    description: 'Worker threads that validate and hash uploads off the event loop; unset: one per core (os.availableParallelism()); 0: on the event loop.'
  })),
  MAX_CONCURRENT_UPLOADS: Type.Integer({
    minimum: 0, maximum: 100000, default: 8,
    description: 'Uploads one replica receives at once; more are answered 503 with Retry-After (OVERLOAD_RETRY_AFTER_SECONDS) before their body is read. Bounds memory (see Memory); 0: no bound.'
  }),
  RATE_LIMIT_MAX: Type.Integer({ minimum: 0, default: 0, description: 'Requests per API key (per project in gateway mode) and window, counted per replica; 0: no limit.' }),
  RATE_LIMIT_WINDOW_MS: Type.Integer({ minimum: 1000, default: 60000, description: 'Rate limit window.' }),
  PROJECT_MAX_FILES: Type.Integer({ minimum: 0, default: 0, description: 'Most live files per project; 0: unlimited.' }),
  PROJECT_MAX_BYTES: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0, description: 'Most live bytes per project; 0: unlimited.' }),
  UPLOAD_MAX_BYTES: ByteCount(8 * 1024 * MiB, 'Largest file made through the Uploads API (`POST /uploads`, in parts), in bytes; batch files still at most BATCH_MAX_FILE_BYTES.'),
  UPLOAD_MAX_PARTS: Type.Integer({ minimum: 1, maximum: 100000, default: 10000, description: 'Most parts one upload may be sent (retried parts count).' }),
  PROJECT_MAX_PENDING_UPLOADS: Type.Integer({ minimum: 0, default: 100, description: 'Most pending uploads (Uploads API) per project at once; 0: unlimited.' }),
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 1, secret: true, description: 'When set, GET /metrics requires `Authorization: Bearer <token>`. A secret: never logged.' })),
  CORS_ORIGINS: Type.Optional(Type.String({
    // Origins as browsers send them (scheme://host[:port], no path), or `*`.
    pattern: '^\\s*(\\*|https?://[^\\s,/]+)(\\s*,\\s*(\\*|https?://[^\\s,/]+))*\\s*$',
    description: 'Comma-separated origins (`https://app.example.com`) allowed to call the API from a browser, or `*`. Unset: no CORS headers at all.'
  })),
  TRUSTED_PROJECT_HEADER: Type.Optional(Type.String({
    pattern: '^[A-Za-z0-9-]{1,64}$',
    description: 'Gateway mode: a request carrying this header is attributed to the project it names, without a key. Only behind a gateway that authenticates callers and strips the header.'
  }))
}, { additionalProperties: true })

export type Config = Static<typeof ConfigSchema>
