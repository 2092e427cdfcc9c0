import Type, { type Static } from 'typebox'
import { BATCH_STATUSES } from '../src/batches/lifecycle.js'
import { BatchErrorSchema } from './batch-error.js'

/**
 * The Batches API's shapes, after OpenAI's published schemas
 * (../shared/openai-spec/batches.json: Batch, CreateBatchRequest, ListBatchesResponse).
 * A field that has no value yet is `null`, as OpenAI answers (its own examples show
 * `"output_file_id": null`, `"in_progress_at": null`), never left out.
 */

export const BATCH_ID_PATTERN = '^batch_[0-9A-HJKMNP-TV-Z]{26}$'

/** The completion windows a batch may ask for, and how long each is (OpenAI: only `24h`). */
export const COMPLETION_WINDOW_SECONDS = { '24h': 86400 } as const

/** Output and error files expire this long after they are created, 1 hour to 30 days (BatchFileExpirationAfter). */
export const BatchFileExpirationAfterSchema = Type.Object({
  anchor: Type.Literal('created_at', { description: 'Only `created_at`: the time the output file is created, not the batch.' }),
  seconds: Type.Integer({ minimum: 3600, maximum: 2592000, description: 'Seconds after the anchor when the file expires: 3600 (1 hour) to 2592000 (30 days).' })
}, { description: 'When the batch\'s output and error files expire.' })

/** OpenAI's `Metadata`: up to 16 string pairs, keys up to 64 characters, values up to 512; or null. */
// additionalProperties, as OpenAI's Metadata, rather than Type.Record: its `^.*$` pattern
// does not match a key holding a newline, whose value would then go unchecked.
export const MetadataSchema = Type.Union([
  Type.Unsafe<Record<string, string>>({
    type: 'object',
    additionalProperties: { type: 'string', maxLength: 512 },
    maxProperties: 16,
    propertyNames: { maxLength: 64 }
  }),
  Type.Null()
], { description: 'Up to 16 key-value pairs; keys at most 64 characters, values at most 512.' })
export type Metadata = Static<typeof MetadataSchema>

const Timestamp = (description: string) => Type.Union([Type.Integer(), Type.Null()], { description: `Unix time (seconds) ${description}, or null.` })
const Tokens = (description: string) => Type.Integer({ minimum: 0, description })

export const BatchStatusSchema = Type.Enum(BATCH_STATUSES, { description: 'The current status of the batch.' })

/** OpenAI's `Batch`. */
export const BatchObjectSchema = Type.Object({
  id: Type.String({ description: 'The batch identifier: `batch_` followed by a ULID.', examples: ['batch_01J9Z3N4Q8X7V6T5R4P3M2K1H0'] }),
  object: Type.Literal('batch'),
  endpoint: Type.String({ description: 'The endpoint every request of the batch is sent to, e.g. `/v1/chat/completions`.' }),
  model: Type.Union([Type.String(), Type.Null()], { description: 'The model of the input file\'s requests (its first line\'s `body.model`).' }),
  errors: Type.Union([
    Type.Object({ object: Type.Literal('list'), data: Type.Array(BatchErrorSchema) }),
    Type.Null()
  ], { description: 'Why the batch failed (with line numbers where a line is at fault), or null.' }),
  input_file_id: Type.String({ description: 'The file of requests the batch runs.' }),
  completion_window: Type.String({ description: 'The time frame within which the batch should be processed: `24h`.' }),
  status: BatchStatusSchema,
  output_file_id: Type.Union([Type.String(), Type.Null()], { description: 'The file of the successful requests\' results (purpose `batch_output`), or null.' }),
  error_file_id: Type.Union([Type.String(), Type.Null()], { description: 'The file of the failed requests\' results (purpose `batch_output`), or null.' }),
  created_at: Type.Integer({ description: 'Unix time (seconds) of creation.' }),
  in_progress_at: Timestamp('when the batch started running'),
  expires_at: Timestamp('when the batch expires (its completion window ends)'),
  finalizing_at: Timestamp('when the batch started finalizing'),
  completed_at: Timestamp('when the batch completed'),
  failed_at: Timestamp('when the batch failed'),
  expired_at: Timestamp('when the batch expired'),
  cancelling_at: Timestamp('when a cancel was asked for'),
  cancelled_at: Timestamp('when the batch was cancelled'),
  request_counts: Type.Object({
    total: Type.Integer({ minimum: 0, description: 'Requests in the batch (0 until it is planned).' }),
    completed: Type.Integer({ minimum: 0, description: 'Requests answered with a 2xx (in the output file).' }),
    failed: Type.Integer({ minimum: 0, description: 'Requests that ended otherwise (in the error file).' })
  }, { description: 'Current while the batch runs.' }),
  usage: Type.Object({
    input_tokens: Tokens('Input tokens, summed from the answers.'),
    input_tokens_details: Type.Object({ cached_tokens: Tokens('Input tokens served from the upstream\'s cache.') }),
    output_tokens: Tokens('Output tokens, summed from the answers.'),
    output_tokens_details: Type.Object({ reasoning_tokens: Tokens('Reasoning tokens among the output tokens.') }),
    total_tokens: Tokens('All tokens, summed from the answers.')
  }, { description: 'Token usage summed from the answers so far.' }),
  metadata: MetadataSchema,
  // Not in OpenAI's Batch (its SDKs keep unknown fields): the one figure that shows a batch
  // running on retries while its counts still look healthy (issue 11 item 6, the console).
  upstream_retries: Type.Integer({ minimum: 0, description: 'files-api extension: requests re-sent to the upstream (after a 429, a 5xx, a timeout or a transport failure) for the lines recorded so far.' })
}, { $id: 'Batch', description: 'A batch (OpenAI `Batch`).' })
export type BatchObject = Static<typeof BatchObjectSchema>

/**
 * OpenAI's `CreateBatchRequest`. `endpoint` is one of the urls batch files may use here
 * (BATCH_ALLOWED_URLS), so the schema is built from the settings: the OpenAPI document
 * lists exactly what this deployment accepts.
 */
export function CreateBatchBodySchema (allowedUrls: readonly string[]) {
  return Type.Object({
    input_file_id: Type.String({ description: 'The id of a file uploaded with purpose `batch`.' }),
    endpoint: Type.Unsafe<string>({ type: 'string', enum: [...allowedUrls], description: 'The endpoint every request of the input file uses (their `url`).' }),
    completion_window: Type.Literal('24h', { description: 'The time frame within which the batch should be processed; only `24h`.' }),
    metadata: Type.Optional(MetadataSchema),
    output_expires_after: Type.Optional(BatchFileExpirationAfterSchema)
  })
}
export type CreateBatchBody = Static<ReturnType<typeof CreateBatchBodySchema>>

export const BatchIdParamsSchema = Type.Object({
  batch_id: Type.String({ description: 'The id of the batch.' })
})
export type BatchIdParams = Static<typeof BatchIdParamsSchema>

export const ListBatchesQuerySchema = Type.Object({
  after: Type.Optional(Type.String({ pattern: BATCH_ID_PATTERN, description: 'A batch id: the page starts after it (newest first). The batch need not exist.' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Batches per page, 1 to 100.' }))
})
export type ListBatchesQuery = Static<typeof ListBatchesQuerySchema>

/** OpenAI's `ListBatchesResponse`; `first_id`/`last_id` are null on an empty page. */
export const ListBatchesResponseSchema = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(BatchObjectSchema),
  first_id: Type.Union([Type.String(), Type.Null()]),
  last_id: Type.Union([Type.String(), Type.Null()]),
  has_more: Type.Boolean({ description: 'Whether another page follows this one.' })
})
