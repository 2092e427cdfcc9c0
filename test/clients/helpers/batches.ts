import type { Test } from 'tap'
import { openAiValidator } from '../../helpers/openai-schemas.js'

/**
 * The Batches contract between the SDK tests and their programs (Node in-process, Python
 * as a script): what each prints, and one set of exact assertions for all of them.
 */
export interface SdkError { class: string, status: number | null, code: string | null, param: string | null, message: string | null }

export interface BatchLifecycleResult {
  sdk: string
  file: Record<string, unknown>
  created: Record<string, unknown>
  final: Record<string, unknown>
  polls: number
  /** The output file's content. */
  output: string
  /** Ids seen by the SDK's auto-paginating list with limit 1 (one page a request). */
  listed: string[]
  cancel_completed: Record<string, unknown>
  errors: { not_found: SdkError, wrong_purpose: SdkError, wrong_endpoint: SdkError }
}

/** LITELLM_MOCK_TEXT in scripts/test-services.sh. */
export const MOCK_TEXT = 'files-api test answer from the LiteLLM mock'
export const SKIP_NO_LITELLM = 'LITELLM_BASE_URL is not set: scripts/test-services.sh starts LiteLLM (CI: .ci/run)'

const validateLine = openAiValidator('BatchRequestOutput')
const validateBatch = openAiValidator('BatchWithNulls')

export function assertBatchLifecycle (t: Test, result: BatchLifecycleResult, classes: { notFound: string, badRequest: string }): void {
  t.equal(result.file.purpose, 'batch')
  t.match(result.created, { object: 'batch', endpoint: '/v1/chat/completions', input_file_id: result.file.id, completion_window: '24h', status: 'validating', metadata: { run: String(result.created.metadata && (result.created.metadata as Record<string, string>).run) } })
  t.match(result.created.id, /^batch_[0-9A-Z]{26}$/)
  t.ok(validateBatch(result.created), `the created batch validates against OpenAI's Batch (unset fields null): ${JSON.stringify(validateBatch.errors)}`)
  const final = result.final
  t.ok(validateBatch(final), `the completed batch validates: ${JSON.stringify(validateBatch.errors)}`)
  t.match(final, { id: result.created.id, status: 'completed', request_counts: { total: 2, completed: 2, failed: 0 }, error_file_id: null, model: 'batch-test-model' })
  t.match(final.usage, { input_tokens: 20, output_tokens: 40, total_tokens: 60, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 0 } })
  for (const stamp of ['created_at', 'in_progress_at', 'finalizing_at', 'completed_at', 'expires_at']) t.type(final[stamp], 'number', `${stamp} is set`)
  const output = result.output.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { custom_id: string, response: { status_code: number, body: { choices: Array<{ message: { content: string } }> } } })
  t.same(output.map((l) => l.custom_id), ['1', '2'], 'the seed\'s two lines, in order, once each')
  for (const line of output) {
    t.ok(validateLine(line), `an output line validates against OpenAI's batch output schema: ${JSON.stringify(validateLine.errors)}`)
    t.equal(line.response.status_code, 200)
    t.equal(line.response.body.choices[0]?.message.content, MOCK_TEXT)
  }
  t.ok(result.listed.includes(String(result.created.id)), 'the list shows the batch')
  t.match(result.cancel_completed, { id: result.created.id, status: 'completed' }, 'cancelling a completed batch answers it unchanged')
  t.match(result.errors.not_found, { class: classes.notFound, status: 404 })
  t.match(result.errors.wrong_purpose, { class: classes.badRequest, status: 400, param: 'input_file_id' })
  t.match(result.errors.wrong_endpoint, { class: classes.badRequest, status: 400, param: 'endpoint' })
}
