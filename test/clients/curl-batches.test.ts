import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { KEY_A, startServer } from '../helpers/app.js'
import { assertBatchLifecycle, SKIP_NO_LITELLM } from './helpers/batches.js'
import { SAMPLE } from './helpers/lifecycle.js'

/**
 * The README's curl flow, on both families, against LiteLLM: upload the seed's file,
 * create a batch, poll it to completion, download the output. The envelope family
 * answers the same data inside {success, code, message, data}.
 */
const upstream = process.env.LITELLM_BASE_URL

async function curl (args: string[]): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    execFile('curl', ['--silent', '--show-error', '--write-out', '\n%{http_code}', '--header', `Authorization: Bearer ${KEY_A}`, ...args], { timeout: 20_000 }, (error, stdout) => {
      if (error !== null) return reject(error)
      const cut = stdout.lastIndexOf('\n')
      resolve({ status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) })
    })
  })
}

for (const family of ['/v1', '/api/v1']) {
  t.test(`curl on ${family}: upload, create, watch, download`, { skip: upstream === undefined ? SKIP_NO_LITELLM : false }, async (t) => {
    const { url } = await startServer(t, { UPSTREAM_BASE_URL: upstream!, UPSTREAM_API_KEY: process.env.LITELLM_MASTER_KEY ?? '', BATCH_POLL_INTERVAL_MS: '100' })
    const unwrap = (text: string): Record<string, unknown> => {
      const body = JSON.parse(text) as Record<string, unknown>
      if (family === '/v1') return body
      t.match(body, { success: true, code: '200', message: 'successful' })
      return body.data as Record<string, unknown>
    }
    const base = `${url}${family}`
    const uploaded = await curl(['--request', 'POST', `${base}/files`, '--form', `file=@"${SAMPLE}"`, '--form', 'purpose="batch"'])
    t.equal(uploaded.status, 200)
    const file = unwrap(uploaded.body)
    const json = ['--header', 'Content-Type: application/json', '--request', 'POST']
    const create = await curl([...json, `${base}/batches`, '--data', JSON.stringify({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h', metadata: { run: 'curl' } })])
    t.equal(create.status, 200, create.body)
    const created = unwrap(create.body)
    let batch = created
    let polls = 0
    while (!['completed', 'failed', 'expired', 'cancelled'].includes(String(batch.status))) {
      await new Promise((resolve) => setTimeout(resolve, 200))
      if (++polls > 300) throw new Error(`not finished: ${JSON.stringify(batch)}`)
      // The envelope family also retrieves by POST (the OceanBase contract).
      const got = family === '/api/v1' && polls % 2 === 0 ? await curl(['--request', 'POST', `${base}/batches/${String(created.id)}`]) : await curl([`${base}/batches/${String(created.id)}`])
      t.equal(got.status, 200)
      batch = unwrap(got.body)
    }
    const output = await curl([`${base}/files/${String(batch.output_file_id)}/content`])
    t.equal(output.status, 200)
    const list = await curl([`${base}/batches?limit=1`])
    const page = unwrap(list.body) as { data: Array<{ id: string }>, has_more: boolean }
    const cancel = await curl(['--request', 'POST', `${base}/batches/${String(batch.id)}/cancel`])
    const missing = await curl([`${base}/batches/batch_00000000000000000000000000`])
    t.equal(missing.status, 404)
    const errorOf = (r: { status: number, body: string }) => {
      const body = JSON.parse(r.body) as Record<string, unknown>
      const error = (family === '/v1' ? body.error : (body.data as { error: unknown }).error) as Record<string, unknown>
      return { class: String(r.status), status: r.status, code: (error.code ?? null) as string | null, param: (error.param ?? null) as string | null, message: (error.message ?? null) as string | null }
    }
    const notes = path.join(t.testdirName, 'notes.jsonl')
    await writeFile(notes, '{}\n')
    const userData = unwrap((await curl(['--request', 'POST', `${base}/files`, '--form', `file=@"${notes}"`, '--form', 'purpose="user_data"'])).body)
    const wrongPurpose = await curl([...json, `${base}/batches`, '--data', JSON.stringify({ input_file_id: userData.id, endpoint: '/v1/chat/completions', completion_window: '24h' })])
    const wrongEndpoint = await curl([...json, `${base}/batches`, '--data', JSON.stringify({ input_file_id: file.id, endpoint: '/v1/embeddings', completion_window: '24h' })])
    assertBatchLifecycle(t, {
      sdk: 'curl',
      file,
      created,
      final: batch,
      polls,
      output: output.body,
      listed: page.data.map((b) => b.id),
      cancel_completed: unwrap(cancel.body),
      errors: {
        not_found: errorOf(missing),
        wrong_purpose: errorOf(wrongPurpose),
        wrong_endpoint: errorOf(wrongEndpoint)
      }
    }, { notFound: '404', badRequest: '400' })
  })
}
