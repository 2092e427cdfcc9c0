import t from 'tap'
import { startServer } from '../helpers/app.js'
import { assertLifecycle, assertRefusals, programEnv, runProgram, writeInputs } from './helpers/lifecycle.js'

const PROGRAM = new URL('./python/files_lifecycle.py', import.meta.url).pathname
// The virtualenv with the latest openai from PyPI: scripts/test-services.sh installs it and
// exports this, so CI (.ci/run) always has it; a bare local run may not.
const python = process.env.OPENAI_PYTHON

t.test('the official openai Python SDK drives the whole Files lifecycle over a real socket', {
  skip: python === undefined || python === '' ? 'OPENAI_PYTHON is not set: run `eval "$(bash scripts/test-services.sh python)"` (CI gets it from test-services.sh start)' : false
}, async (t) => {
  const server = await startServer(t)
  const inputs = await writeInputs(t)
  const { result, ms } = await runProgram(python ?? 'python3', [PROGRAM], programEnv(server, inputs))
  t.comment(`${result.sdk}: lifecycle and ${result.refusals.attempts} refusals in ${ms} ms`)
  t.match(result.sdk, /^openai-python \d+\./)
  t.same(result.uploads.map((upload) => upload.via), ['raw multipart', 'sdk', 'raw multipart', 'sdk', 'sdk'],
    'the SDK always sends purpose before file: file first goes raw, through the SDK\'s client')
  t.test('lifecycle', async (t) => assertLifecycle(t, result, inputs, server, { authentication: 'AuthenticationError', notFound: 'NotFoundError', badRequest: 'BadRequestError' }))
  t.test('early refusals', async (t) => assertRefusals(t, result))
})
