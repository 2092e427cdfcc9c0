import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { KEY_A } from '../helpers/app.js'
import { DRIVERS, startUploadsServer } from '../helpers/uploads.js'
import { runProgram } from './helpers/lifecycle.js'

const MODULE = new URL('./go/', import.meta.url).pathname
// As test/clients/go-sdk.test.ts: the Go installed here, exactly the versions go.sum pins.
const GO_ENV = { PATH: `${process.env.PATH ?? ''}${path.delimiter}/usr/local/go/bin`, GOTOOLCHAIN: 'local', GOFLAGS: '-mod=readonly' }
// A cold build of openai-go takes minutes (see go-sdk.test.ts); warm, seconds.
t.setTimeout(30 * 60 * 1000)

interface GoUploadResult {
  sdk: string
  upload: { id: string, status: string, bytes: number, file: { id: string, bytes: number, purpose: string } }
  parts: number
  bytes: number
  sha256: string
}

t.test('the official openai-go SDK sends parts in parallel, last first, and gets a byte-identical File', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'files-api-go-uploads-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const program = path.join(dir, 'uploads')
  const build = await runProgram('go', ['build', '-o', program, './uploads'], GO_ENV, MODULE, { json: false })
  t.comment(`go build: ${build.ms} ms`)
  const source = path.join(dir, 'data.bin')
  const content = randomBytes(7 * 1024 * 1024 + 11)
  await writeFile(source, content)

  for (const driver of DRIVERS) {
    t.test(driver, async (t) => {
      const server = await startUploadsServer(t, driver)
      const { result, ms } = await runProgram(program, [], {
        FILES_API_BASE_URL: `${server.url}/v1`,
        FILES_API_KEY: KEY_A,
        FILES_API_SOURCE: source,
        FILES_API_PART_SIZE: String(2 * 1024 * 1024)
      }) as unknown as { result: GoUploadResult, ms: number }
      t.comment(`${result.sdk}: ${content.length} bytes in ${result.parts} parts in ${ms} ms (${driver})`)
      t.match(result.sdk, /^openai-go v3\./)
      t.equal(result.parts, 4)
      t.match(result.upload, { status: 'completed', bytes: content.length, file: { bytes: content.length, purpose: 'assistants' } })
      t.equal(result.sha256, createHash('sha256').update(content).digest('hex'), 'the File holds exactly the source\'s bytes')
      t.same(await server.leftovers(), [], 'no part and no unfinished multipart upload left')
    })
  }
})
