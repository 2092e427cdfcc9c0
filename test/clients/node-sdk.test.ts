import t from 'tap'
import { startServer } from '../helpers/app.js'
import { assertLifecycle, assertRefusals, programEnv, runProgram, writeInputs } from './helpers/lifecycle.js'

const PROGRAM = new URL('./helpers/node-lifecycle.ts', import.meta.url).pathname

t.test('the official openai Node SDK drives the whole Files lifecycle over a real socket', async (t) => {
  const server = await startServer(t)
  const inputs = await writeInputs(t)
  // The same Node and the same tsx loader as this test, in a process of its own.
  const { result, ms } = await runProgram(process.execPath, ['--import', 'tsx', PROGRAM], programEnv(server, inputs))
  t.comment(`${result.sdk}: lifecycle and ${result.refusals.attempts} refusals in ${ms} ms`)
  t.match(result.sdk, /^openai-node 7\./, 'the current major')
  t.test('lifecycle', async (t) => assertLifecycle(t, result, inputs, server, { authentication: 'AuthenticationError', notFound: 'NotFoundError', badRequest: 'BadRequestError' }))
  t.test('early refusals', async (t) => assertRefusals(t, result))
})
