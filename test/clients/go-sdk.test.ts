import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { startServer } from '../helpers/app.js'
import { assertLifecycle, assertRefusals, programEnv, runProgram, writeInputs } from './helpers/lifecycle.js'

const MODULE = new URL('./go/', import.meta.url).pathname
// Go's official tarball installs here, and a non-login shell (CI) may lack it on PATH.
const PATH = `${process.env.PATH ?? ''}${path.delimiter}/usr/local/go/bin`
// GOTOOLCHAIN=local: build with the Go installed here, never fetch another toolchain;
// -mod=readonly: exactly the versions that go.sum pins (fetched from the module proxy
// into the module cache when missing).
const GO_ENV = { PATH, GOTOOLCHAIN: 'local', GOFLAGS: '-mod=readonly' }

// A cold build of openai-go takes minutes of CPU (12 min of wall time measured on a
// loaded 2-core machine); scripts/test-services.sh start warms the build cache first,
// after which it is seconds. This file's time limit allows for a cold cache all the same.
t.setTimeout(30 * 60 * 1000)

t.test('the official openai-go SDK drives the whole Files lifecycle over a real socket', async (t) => {
  const bin = await mkdtemp(path.join(tmpdir(), 'files-api-go-client-'))
  t.teardown(() => rm(bin, { recursive: true, force: true }))
  const program = path.join(bin, 'files-lifecycle')
  const build = await runProgram('go', ['build', '-o', program, '.'], GO_ENV, MODULE, { json: false })
  t.comment(`go build: ${build.ms} ms`)

  const server = await startServer(t)
  const inputs = await writeInputs(t)
  const { result, ms } = await runProgram(program, [], programEnv(server, inputs))
  t.comment(`${result.sdk}: lifecycle and ${result.refusals.attempts} refusals in ${ms} ms`)
  t.match(result.sdk, /^openai-go v3\./)
  t.same(result.uploads.map((upload) => upload.via), ['sdk', 'raw multipart', 'sdk', 'raw multipart', 'sdk'],
    'the SDK always sends file before purpose: purpose first goes raw, through the SDK\'s own request')
  t.test('lifecycle', async (t) => assertLifecycle(t, result, inputs, server, { authentication: 'openai.Error', notFound: 'openai.Error', badRequest: 'openai.Error' }))
  t.test('early refusals', async (t) => assertRefusals(t, result))
})
