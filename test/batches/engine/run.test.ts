import t, { type Test } from 'tap'
import { startServer } from '../../helpers/app.js'
import { openAiValidator } from '../../helpers/openai-schemas.js'
import { freshDatabase, NO_POSTGRES_REASON, testDatabaseUrl } from '../../helpers/postgres.js'
import { serviceEnv, startS3Server } from '../../helpers/s3-server.js'
import { startControllableUpstream } from '../helpers/controllable-upstream.js'
import { chatLines, partsLeft, createBatchRow, fileLines, isTerminal, uploadBatchFile, waitForBatch } from './helpers.js'

const validateLine = openAiValidator('BatchRequestOutput')

const FAST = { LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', BATCH_POLL_INTERVAL_MS: '50', BATCH_CHUNK_LINES: '7', BATCH_RETRY_BASE_MS: '20', BATCH_RETRY_MAX_MS: '200' }

async function deployment (t: Test, kind: string): Promise<Record<string, string>> {
  if (kind === 'sqlite+fs') return {}
  const server = testDatabaseUrl()
  if (server === undefined) throw new Error(NO_POSTGRES_REASON)
  return { DATABASE_URL: await freshDatabase(t, server), ...serviceEnv(await startS3Server(t)) }
}

for (const kind of ['sqlite+fs', 'postgres+s3']) {
  t.test(`${kind}: a batch runs to completed: every line once, answers in the output file in line order, usage summed`,
    { skip: kind === 'postgres+s3' && testDatabaseUrl() === undefined ? NO_POSTGRES_REASON : false }, async (t) => completes(t, await deployment(t, kind)))
}

async function completes (t: Test, env: Record<string, string>): Promise<void> {
  const upstream = await startControllableUpstream()
  t.teardown(() => upstream.close())
  upstream.rejectModels('refused-model')
  const { app, url } = await startServer(t, { ...FAST, ...env, UPSTREAM_BASE_URL: `${upstream.url}/v1`, BATCH_CONCURRENCY: '4' })
  const lines = chatLines(20) + chatLines(3, 'refused-model', 21)
  const fileId = await uploadBatchFile(url, lines)
  const created = await createBatchRow(app, fileId)
  const batch = await waitForBatch(app, created.id, isTerminal)
  t.equal(batch.status, 'completed')
  t.same(batch.requestCounts, { total: 23, completed: 20, failed: 3 })
  t.equal(batch.usage.inputTokens, 20)
  t.equal(batch.usage.outputTokens, 20)
  t.equal(batch.usage.totalTokens, 40)
  t.ok(batch.inProgressAt !== null && batch.finalizingAt !== null && batch.completedAt !== null)
  t.equal(upstream.requests.length, 23, 'each line sent once')
  t.ok(upstream.maxInFlight() <= 4, `at most BATCH_CONCURRENCY in flight (saw ${upstream.maxInFlight()})`)
  t.equal(upstream.requests[0]?.url, '/v1/chat/completions', 'no doubled /v1')

  const output = await fileLines(url, batch.outputFileId!)
  t.same(output.map((l) => l.custom_id), Array.from({ length: 20 }, (_, i) => `req-${i + 1}`))
  for (const line of [...output]) t.ok(validateLine(line), `output line validates: ${JSON.stringify(validateLine.errors)}`)
  t.equal((output[0]?.response as { status_code: number }).status_code, 200)
  const errors = await fileLines(url, batch.errorFileId!)
  t.same(errors.map((l) => [l.custom_id, (l.response as { status_code: number }).status_code]), [['req-21', 400], ['req-22', 400], ['req-23', 400]])
  for (const line of errors) t.ok(validateLine(line), 'error line validates')

  // Nothing left behind: no parts, no recorded rows, no leases.
  const db = app.fileStore.batchDb
  t.same(await db.selectFrom('batch_results').selectAll().execute(), [])
  t.same((await db.selectFrom('batch_chunks').select('state').execute()).map((r) => r.state), Array(4).fill('done'))
  t.same(await partsLeft(app), [], 'the parts were removed')
}
