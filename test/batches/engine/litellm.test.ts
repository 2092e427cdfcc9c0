import t from 'tap'
import { startServer } from '../../helpers/app.js'
import { openAiValidator } from '../../helpers/openai-schemas.js'
import { chatLines, createBatchRow, fileLines, isTerminal, uploadBatchFile, waitForBatch } from './helpers.js'

/**
 * The engine against a real OpenAI-compatible server no one here wrote: LiteLLM's proxy
 * with mock models (scripts/test-services.sh), through the real app on a real socket.
 */
const baseUrl = process.env.LITELLM_BASE_URL
const key = process.env.LITELLM_MASTER_KEY
const validateLine = openAiValidator('BatchRequestOutput')
const MOCK_TEXT = 'files-api test answer from the LiteLLM mock'

t.test('a batch against LiteLLM: completed, output lines validate, usage summed from the answers', {
  skip: baseUrl === undefined || key === undefined ? 'LITELLM_BASE_URL is not set (scripts/test-services.sh starts LiteLLM)' : false
}, async (t) => {
  const { app, url } = await startServer(t, { UPSTREAM_BASE_URL: baseUrl!, UPSTREAM_API_KEY: key!, BATCH_POLL_INTERVAL_MS: '50', BATCH_CHUNK_LINES: '5' })
  const fileId = await uploadBatchFile(url, chatLines(12) + chatLines(2, 'no-such-model', 13))
  const batch = await waitForBatch(app, (await createBatchRow(app, fileId)).id, isTerminal, 60_000)
  t.equal(batch.status, 'completed')
  t.same(batch.requestCounts, { total: 14, completed: 12, failed: 2 })
  // LiteLLM's mock usage is 10 prompt + 20 completion tokens per answer.
  t.same(batch.usage, { inputTokens: 120, cachedTokens: 0, outputTokens: 240, reasoningTokens: 0, totalTokens: 360 })
  const output = await fileLines(url, batch.outputFileId!)
  t.same(output.map((l) => l.custom_id), Array.from({ length: 12 }, (_, i) => `req-${i + 1}`))
  for (const line of output) {
    t.ok(validateLine(line), `validates: ${JSON.stringify(validateLine.errors)}`)
    const response = line.response as { status_code: number, request_id: string, body: { choices: Array<{ message: { content: string } }> } }
    t.equal(response.status_code, 200)
    t.equal(response.body.choices[0]?.message.content, MOCK_TEXT)
    t.type(response.request_id, 'string')
  }
  const errors = await fileLines(url, batch.errorFileId!)
  t.same(errors.map((l) => [l.custom_id, (l.response as { status_code: number }).status_code]), [['req-13', 400], ['req-14', 400]])
  for (const line of errors) t.ok(validateLine(line))
})
