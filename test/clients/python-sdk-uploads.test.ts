import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { KEY_A } from '../helpers/app.js'
import { DRIVERS, startUploadsServer } from '../helpers/uploads.js'
import { runProgram } from './helpers/lifecycle.js'

const PROGRAM = new URL('./python/uploads_chunked.py', import.meta.url).pathname
// The virtualenv with the latest openai from PyPI (scripts/test-services.sh; CI has it).
const python = process.env.OPENAI_PYTHON
const skip = python === undefined || python === '' ? 'OPENAI_PYTHON is not set: run `eval "$(bash scripts/test-services.sh python)"` (CI gets it from test-services.sh start)' : false

interface ChunkedResult {
  sdk: string
  upload: { id: string, status: string, bytes: number, filename: string, file: { id: string, bytes: number, purpose: string, filename: string } }
  bytes: number
  sha256: string
}

for (const driver of DRIVERS) {
  t.test(`${driver}: the Python SDK's upload_file_chunked makes a byte-identical File`, { skip }, async (t) => {
    const server = await startUploadsServer(t, driver)
    // Not t.testdir(): it is the server's DATA_DIR already, and a second call empties it.
    const dir = await mkdtemp(path.join(tmpdir(), 'files-api-chunked-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const source = path.join(dir, 'paper.bin')
    // Six parts of 1 MiB, the last one short; each under S3's 5 MiB part minimum.
    const content = randomBytes(5 * 1024 * 1024 + 123)
    await writeFile(source, content)
    const { result, ms } = await runProgram(python ?? 'python3', [PROGRAM], {
      FILES_API_BASE_URL: `${server.url}/v1`,
      FILES_API_KEY: KEY_A,
      FILES_API_SOURCE: source,
      FILES_API_PART_SIZE: String(1024 * 1024)
    }) as unknown as { result: ChunkedResult, ms: number }
    t.comment(`${result.sdk}: ${content.length} bytes in 6 parts in ${ms} ms (${driver})`)
    t.match(result.upload, { status: 'completed', bytes: content.length, filename: 'paper.bin', file: { bytes: content.length, purpose: 'assistants', filename: 'paper.bin' } })
    t.equal(result.bytes, content.length)
    t.equal(result.sha256, createHash('sha256').update(content).digest('hex'), 'the File holds exactly the source\'s bytes')
    t.same(await server.leftovers(), [], 'no part and no unfinished multipart upload left')
  })
}
