import type { BatchObject } from '../../schemas/batches.js'
import type { BatchRecord } from '../batches/batch-store.js'

/** A batch record as OpenAI's Batch object; a field without a value yet is null. */
export function toBatchObject (record: BatchRecord): BatchObject {
  return {
    id: record.id,
    object: 'batch',
    endpoint: record.endpoint,
    model: record.model,
    // Written only by the engine, from BatchErrorSchema objects (TransitionFields.errors).
    errors: record.errors === null ? null : JSON.parse(record.errors) as BatchObject['errors'],
    input_file_id: record.inputFileId,
    completion_window: record.completionWindow,
    status: record.status,
    output_file_id: record.outputFileId,
    error_file_id: record.errorFileId,
    created_at: record.createdAt,
    in_progress_at: record.inProgressAt,
    expires_at: record.expiresAt,
    finalizing_at: record.finalizingAt,
    completed_at: record.completedAt,
    failed_at: record.failedAt,
    expired_at: record.expiredAt,
    cancelling_at: record.cancellingAt,
    cancelled_at: record.cancelledAt,
    request_counts: { ...record.requestCounts },
    usage: {
      input_tokens: record.usage.inputTokens,
      input_tokens_details: { cached_tokens: record.usage.cachedTokens },
      output_tokens: record.usage.outputTokens,
      output_tokens_details: { reasoning_tokens: record.usage.reasoningTokens },
      total_tokens: record.usage.totalTokens
    },
    metadata: record.metadata,
    upstream_retries: record.upstreamRetries
  }
}
