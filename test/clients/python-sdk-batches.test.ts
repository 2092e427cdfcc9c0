import t from 'tap'
import { KEY_A, startServer } from '../helpers/app.js'
import { assertBatchLifecycle, SKIP_NO_LITELLM, type BatchLifecycleResult } from './helpers/batches.js'
import { runProgram, SAMPLE } from './helpers/lifecycle.js'

const PROGRAM = new URL('./python/batches_lifecycle.py', import.meta.url).pathname
const python = process.env.OPENAI_PYTHON
const upstream = process.env.LITELLM_BASE_URL

t.test('the official openai Python SDK runs the seed\'s file as a batch against LiteLLM, unchanged', {
  skip: python === undefined || python === '' ? 'OPENAI_PYTHON is not set (scripts/test-services.sh)' : upstream === undefined ? SKIP_NO_LITELLM : false
}, async (t) => {
  const server = await startServer(t, { UPSTREAM_BASE_URL: upstream!, UPSTREAM_API_KEY: process.env.LITELLM_MASTER_KEY ?? '', BATCH_POLL_INTERVAL_MS: '100' })
  const { result, ms } = await runProgram(python!, [PROGRAM], { FILES_API_BASE_URL: `${server.url}/v1`, FILES_API_KEY: KEY_A, FILES_API_SAMPLE: SAMPLE })
  const batches = result as unknown as BatchLifecycleResult
  t.comment(`${batches.sdk}: batch completed after ${batches.polls} polls, ${ms} ms in all`)
  t.match(batches.sdk, /^openai-python \d+\./)
  assertBatchLifecycle(t, batches, { notFound: 'NotFoundError', badRequest: 'BadRequestError' })
})
