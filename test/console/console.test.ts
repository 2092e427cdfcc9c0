import { existsSync } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { CONSOLE_CONTENT_SECURITY_POLICY } from '../../src/routes/console.js'
import { KEY_A, startServer } from '../helpers/app.js'
import { startControllableUpstream } from '../batches/helpers/controllable-upstream.js'
import { chatLines } from '../batches/engine/helpers.js'

// Debian's chromium (scripts/test-services.sh start installs it); playwright-core never
// downloads a browser of its own.
const CHROMIUM = '/usr/bin/chromium'
const NO_CHROMIUM = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: apt-get install chromium (scripts/test-services.sh start does)`
/** Screenshots for a person to look at; gitignored. */
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url))

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

async function launch (t: Test): Promise<Browser> {
  // --no-sandbox: the tests run as root (CI), where Chromium's sandbox refuses to start.
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] })
  t.teardown(() => browser.close())
  return browser
}

async function uploadThroughPage (page: Page, name: string, text: string): Promise<void> {
  await page.setInputFiles('#upload-file', { name, mimeType: 'application/jsonl', buffer: Buffer.from(text) })
  await page.selectOption('#upload-purpose', 'batch')
  await page.getByRole('button', { name: 'Upload', exact: true }).click()
}

/** Uploads a batch file through the page, creates its batch there; the batch's id. */
async function createBatchThroughPage (page: Page, name: string, text: string): Promise<string> {
  await uploadThroughPage(page, name, text)
  const stored = page.locator('#upload-result.ok code[data-file-id]')
  await stored.waitFor()
  await page.getByRole('button', { name: 'Create batch from it' }).click()
  const created = page.locator('#create-result.ok code[data-batch-id]')
  await created.waitFor()
  const id = await created.getAttribute('data-batch-id')
  if (id === null) throw new Error('no batch id on the page')
  return id
}

interface Seen { percent: number, status: string }

/** What the page shows for the batch: its bar's aria-valuenow and its status, read at one instant. */
async function shown (page: Page, id: string): Promise<Seen | null> {
  return await page.evaluate((id) => {
    const row = [...document.querySelectorAll('tr[data-batch-id]')].find((r) => r.getAttribute('data-batch-id') === id)
    const bar = row?.querySelector('[role="progressbar"]')
    if (row === undefined || bar === null || bar === undefined) return null
    return { percent: Number(bar.getAttribute('aria-valuenow')), status: row.getAttribute('data-status') ?? '' }
  }, id)
}

/** Polls the page (not the API) until the batch shows `until`; every value seen, in order. */
async function watch (page: Page, id: string, until: (s: Seen) => boolean, timeoutMs = 30_000): Promise<Seen[]> {
  const seen: Seen[] = []
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const now = await shown(page, id)
    if (now !== null) {
      const last = seen.at(-1)
      if (last === undefined || last.percent !== now.percent || last.status !== now.status) seen.push(now)
      if (until(now)) return seen
    }
    if (Date.now() > deadline) throw new Error(`batch ${id} did not get there in ${timeoutMs} ms; seen ${JSON.stringify(seen)}`)
    await sleep(50)
  }
}

t.test('the console: key, upload, a batch watched to 100 %, its output downloaded, an invalid file\'s lines, a cancel', { skip: NO_CHROMIUM }, async (t) => {
  const upstream = await startControllableUpstream()
  t.teardown(() => upstream.close())
  // 40 lines, 2 in flight, 250 ms each: about 5 s, so the bar is seen moving at a 1 s refresh.
  upstream.setFallback({ latencyMs: 250 })
  const server = await startServer(t, {
    UPSTREAM_BASE_URL: `${upstream.url}/v1`,
    BATCH_CONCURRENCY: '2',
    BATCH_POLL_INTERVAL_MS: '100',
    // Counts reach the batch as chunks finish: small chunks, so the bar moves in steps.
    BATCH_CHUNK_LINES: '4'
  })

  const browser = await launch(t)
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } })
  const page = await context.newPage()
  const requests: Array<{ url: string, authorization: string | undefined }> = []
  page.on('request', (request) => { requests.push({ url: request.url(), authorization: request.headers().authorization }) })
  const problems: Array<[string, string]> = []
  page.on('console', (message) => { if (message.type() === 'error') problems.push([message.text(), message.location().url.replace(server.url, '')]) })
  page.on('pageerror', (error) => { problems.push([error.message, '']) })

  const loaded = await page.goto(`${server.url}/console`)
  t.equal(loaded?.status(), 200)
  t.equal(loaded?.headers()['content-security-policy'], CONSOLE_CONTENT_SECURITY_POLICY)
  t.equal(loaded?.headers()['x-frame-options'], 'DENY')
  t.equal(await page.locator('#api-key').getAttribute('type'), 'password')

  await page.getByRole('textbox', { name: 'API key' }).fill(KEY_A)
  await page.getByRole('button', { name: 'Use key' }).click()
  await page.locator('#workspace').waitFor({ state: 'visible' })
  t.equal(await page.locator('#api-key').inputValue(), '', 'the key is not left in the field')

  // A batch watched from below 100 % to 100 %, completed; its first three sends answered
  // 429 and retried, which the page must show.
  upstream.queue({ status: 429, retryAfter: '1' }, { status: 429, retryAfter: '1' }, { status: 429, retryAfter: '1' })
  const id = await createBatchThroughPage(page, 'requests.jsonl', chatLines(40))
  const seen = await watch(page, id, (s) => s.status === 'completed')
  t.ok(seen.some((s) => s.percent > 0 && s.percent < 100), `the bar was seen between 0 and 100: ${JSON.stringify(seen)}`)
  t.same(seen.at(-1), { percent: 100, status: 'completed' })
  const row = page.locator(`tr[data-batch-id="${id}"]`)
  t.equal((await row.locator('td.counts').innerText()).trim(), '40 completed · 0 failed · 40 total\n3 upstream retries', 'the retries on a line of their own')

  // Its output downloaded through the page: a Blob, the key in the header only.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    row.getByRole('button', { name: `Download the output of ${id}` }).click()
  ])
  t.match(download.suggestedFilename(), /\.jsonl$/)
  const downloaded = await download.path()
  const lines = (await readFile(downloaded, 'utf8')).split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as { custom_id: string, response: { status_code: number } })
  t.equal(lines.length, 40)
  t.same(lines.map((line) => line.custom_id).sort(), Array.from({ length: 40 }, (_, i) => `req-${i + 1}`).sort())
  t.ok(lines.every((line) => line.response.status_code === 200))
  t.equal(await row.getByRole('button', { name: `Download the errors of ${id}` }).count(), 0, 'no error file, no button')

  // An invalid batch file: refused, its faulty lines named with their numbers.
  const good = (n: number): string => JSON.stringify({ custom_id: `bad-${n}`, method: 'POST', url: '/v1/chat/completions', body: { model: 'mock-chat', messages: [{ role: 'user', content: 'hi' }] } })
  const invalid = [good(1), '{not json', good(3), JSON.stringify({ method: 'POST', url: '/v1/chat/completions', body: { model: 'mock-chat', messages: [{ role: 'user', content: 'x' }] } }), good(5)].join('\n') + '\n'
  await uploadThroughPage(page, 'broken.jsonl', invalid)
  const refused = page.locator('#upload-result.bad')
  await refused.waitFor()
  t.equal(await refused.locator('p').first().textContent(), 'Refused (invalid_batch_file): 2 faulty lines, nothing was stored.')
  t.same(await refused.locator('li').evaluateAll((items) => items.map((item) => item.getAttribute('data-line'))), ['2', '4'])
  const items = await refused.locator('li').allTextContents()
  t.match(items[0], /^Line 2: is not valid JSON .*invalid_json_line$/)
  t.match(items[1], /^Line 4: custom_id is missing.*missing_required_parameter$/)
  await mkdir(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: path.join(ARTIFACTS, 'console-invalid.png'), fullPage: true })
  // A slow batch, cancelled from the page.
  upstream.setFallback({ latencyMs: 1500 })
  const slow = await createBatchThroughPage(page, 'slow.jsonl', chatLines(40))
  const slowRow = page.locator(`tr[data-batch-id="${slow}"]`)
  // Seen moving first, for the screenshot of a running batch.
  await watch(page, slow, (s) => s.percent > 0)
  await page.screenshot({ path: path.join(ARTIFACTS, 'console-running.png'), fullPage: true })
  await slowRow.getByRole('button', { name: `Cancel ${slow}` }).click()
  const cancelling = await watch(page, slow, (s) => s.status === 'cancelled')
  t.equal(cancelling.at(-1)?.status, 'cancelled')
  t.equal(await slowRow.getByRole('button', { name: `Cancel ${slow}` }).count(), 0, 'no cancel button once cancelled')
  await page.screenshot({ path: path.join(ARTIFACTS, 'console.png'), fullPage: true })

  // The key: in the Authorization header of every API call, in no URL, in no storage.
  t.ok(requests.length > 10)
  t.same(requests.filter((r) => r.url.includes(KEY_A) || decodeURIComponent(r.url).includes(KEY_A)), [], 'the key is in no request URL')
  const apiCalls = requests.filter((r) => new URL(r.url).pathname.startsWith('/v1/'))
  t.ok(apiCalls.length > 5)
  t.ok(apiCalls.every((r) => r.authorization === `Bearer ${KEY_A}`), 'every API call carries the key in Authorization')
  t.ok(requests.every((r) => r.url.startsWith(server.url) || r.url.startsWith('blob:')), 'the page talks to its own origin only')
  t.same(await page.evaluate(() => ({ local: localStorage.length, session: sessionStorage.length, cookie: document.cookie })), { local: 0, session: 0, cookie: '' })
  // The browser logs every non-2xx answer: the one expected is the invalid file's 400.
  t.same(problems, [['Failed to load resource: the server responded with a status of 400 (Bad Request)', '/v1/files']], 'no script error, no CSP violation, no other failed request')
})

t.test('the page and its assets load without a key, each under the console\'s CSP', async (t) => {
  const server = await startServer(t)
  const js = 'text/javascript; charset=utf-8'
  const expected: Array<[string, number, string | null]> = [
    ['/console', 200, 'text/html; charset=utf-8'],
    ['/console/console.js', 200, js],
    ['/console/api.js', 200, js],
    ['/console/batches.js', 200, js],
    ['/console/files.js', 200, js],
    ['/console/dom.js', 200, js],
    ['/console/console.css', 200, 'text/css; charset=utf-8'],
    ['/console/favicon.svg', 200, 'image/svg+xml']
  ]
  for (const [url, status, type] of expected) {
    const res = await fetch(`${server.url}${url}`)
    t.same([res.status, res.headers.get('content-type'), res.headers.get('content-security-policy'), res.headers.get('x-frame-options')],
      [status, type, CONSOLE_CONTENT_SECURITY_POLICY, 'DENY'], url)
  }
  t.equal((await fetch(`${server.url}/console/index.html`)).status, 404, 'the page has one URL')
})

t.test('a wrong key is refused and forgotten', { skip: NO_CHROMIUM }, async (t) => {
  const server = await startServer(t)
  const browser = await launch(t)
  const page = await browser.newPage()
  await page.goto(`${server.url}/console`)
  await page.getByRole('textbox', { name: 'API key' }).fill('sk-not-a-key-0123456789')
  await page.getByRole('button', { name: 'Use key' }).click()
  await page.getByText(/^The key was refused \(invalid_api_key\)/).waitFor()
  t.equal(await page.locator('#workspace').isHidden(), true)
})
