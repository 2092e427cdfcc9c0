import type { LineUsage } from './results.js'

function count (value: unknown): number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : 0
}

function field (object: unknown, key: string): unknown {
  return typeof object === 'object' && object !== null && !Array.isArray(object) ? (object as Record<string, unknown>)[key] : undefined
}

/**
 * The usage of one answer in the Batch object's units (input, cached, output, reasoning,
 * total tokens). Chat and legacy completions and embeddings report `prompt_tokens` /
 * `completion_tokens` (with `prompt_tokens_details.cached_tokens` and
 * `completion_tokens_details.reasoning_tokens`); the Responses API reports
 * `input_tokens` / `output_tokens` with `*_details`. Anything missing or not a count is 0:
 * an upstream that reports no usage adds nothing, it never fails the line.
 */
export function usageOf (body: unknown): LineUsage | undefined {
  const usage = field(body, 'usage')
  if (typeof usage !== 'object' || usage === null) return undefined
  const responses = field(usage, 'input_tokens') !== undefined || field(usage, 'output_tokens') !== undefined
  const inputTokens = count(field(usage, responses ? 'input_tokens' : 'prompt_tokens'))
  const outputTokens = count(field(usage, responses ? 'output_tokens' : 'completion_tokens'))
  const cachedTokens = count(field(field(usage, responses ? 'input_tokens_details' : 'prompt_tokens_details'), 'cached_tokens'))
  const reasoningTokens = count(field(field(usage, responses ? 'output_tokens_details' : 'completion_tokens_details'), 'reasoning_tokens'))
  const total = field(usage, 'total_tokens')
  const totalTokens = typeof total === 'number' ? count(total) : inputTokens + outputTokens
  return { inputTokens, cachedTokens, outputTokens, reasoningTokens, totalTokens }
}
