import { spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import type { BatchError } from '../../schemas/batch-error.js'
import { KEY_A, startServer } from '../helpers/app.js'
import { postMultipart } from '../helpers/multipart.js'
import { INVALID, INVALID_ERRORS, line } from './helpers/invalid-file.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const SAMPLE = fileURLToPath(new URL('../fixtures/test_model.jsonl', import.meta.url))

interface Run { code: number | null, stdout: string, stderr: string }

/**
 * The real binary: its own process, argv, exit status and pipes (so stderr is not a
 * TTY). The environment is exactly PATH plus `env`, so nothing of the test runner's
 * (NODE_OPTIONS, a stray BATCH_* variable) leaks in.
 */
async function cli (args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (text: string) => { stdout += text })
  child.stderr.setEncoding('utf8').on('data', (text: string) => { stderr += text })
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', resolve)
  })
  return { code, stdout, stderr }
}

t.test('src/cli.ts starts with the shebang npm needs for the bin', async (t) => {
  t.ok((await readFile(path.join(ROOT, 'src/cli.ts'), 'utf8')).startsWith('#!/usr/bin/env node\n'))
})

t.test('the sample file: exit 0, the report on stdout, nothing on stderr', async (t) => {
  const text = await cli(['validate', SAMPLE])
  t.equal(text.code, 0)
  t.equal(text.stderr, '', 'no progress line: stderr is a pipe')
  t.equal(text.stdout, [
    `${SAMPLE}: valid batch file`,
    '  requests  2',
    '  url       /v1/chat/completions',
    '  models    batch-test-model (2)',
    '  bytes     438',
    '  warnings  none',
    ''
  ].join('\n'))

  const json = await cli(['validate', '--json', SAMPLE])
  t.equal(json.code, 0)
  t.equal(json.stderr, '')
  t.strictSame(JSON.parse(json.stdout), {
    valid: true,
    file: SAMPLE,
    bytes: 438,
    requests: 2,
    url: '/v1/chat/completions',
    models: { 'batch-test-model': 2 },
    file_error: null,
    errors: [],
    error_count: 0,
    warnings: [],
    warning_count: 0
  })
})

t.test('a file with faulty lines: exit 1 and every error', async (t) => {
  const file = path.join(t.testdir({ 'bad.jsonl': INVALID }), 'bad.jsonl')
  const got = await cli(['validate', file, '--json'])
  t.equal(got.code, 1)
  t.equal(got.stderr, '')
  const report = JSON.parse(got.stdout) as { valid: boolean, errors: BatchError[], error_count: number }
  t.equal(report.valid, false)
  t.strictSame(report.errors, INVALID_ERRORS)
  t.equal(report.error_count, 4)
})

t.test('whole-file rules: the filename and BATCH_MAX_FILE_BYTES, exit 1', async (t) => {
  const dir = t.testdir({ 'batch.json': INVALID, 'batch.jsonl': INVALID })
  const name = await cli(['validate', '--json', path.join(dir, 'batch.json')])
  t.equal(name.code, 1)
  t.equal((JSON.parse(name.stdout) as { file_error: BatchError }).file_error.code, 'invalid_file_format')
  const size = await cli(['validate', '--json', path.join(dir, 'batch.jsonl')], { BATCH_MAX_FILE_BYTES: '10' })
  t.equal(size.code, 1)
  t.equal((JSON.parse(size.stdout) as { file_error: BatchError }).file_error.code, 'file_too_large')
})

t.test('usage and IO errors: exit 2, a message on stderr, nothing on stdout', async (t) => {
  const missing = path.join(t.testdir({}), 'missing.jsonl')
  const cases: Array<[string[], Record<string, string>, string]> = [
    [['validate', missing], {}, `files-api validate: cannot read ${JSON.stringify(missing)}: no such file (ENOENT)\n`],
    [['validate', SAMPLE, '--verbose'], {}, 'files-api validate: Unknown option \'--verbose\'. To specify a positional argument starting with a \'-\', place it at the end of the command after \'--\', as in \'-- "--verbose"\nRun \'files-api validate --help\' for usage.\n'],
    [['validate', SAMPLE], { BATCH_MAX_REQUESTS: 'abc' }, 'files-api validate: invalid configuration: BATCH_MAX_REQUESTS="abc": must be integer\n']
  ]
  for (const [args, env, stderr] of cases) {
    const got = await cli(args, env)
    t.equal(got.code, 2, args.join(' '))
    t.equal(got.stderr, stderr)
    t.equal(got.stdout, '')
  }
})

t.test('the command line around validate: help, version, unknown commands', async (t) => {
  const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string, bin: Record<string, string> }
  t.strictSame(pkg.bin, { 'files-api': 'dist/src/cli.js' }, 'the bin is the build of src/cli.ts')

  const version = await cli(['--version'])
  t.strictSame(version, { code: 0, stdout: `${pkg.version}\n`, stderr: '' })

  const help = await cli(['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /^Usage: files-api <command> \[options\]\n/)
  t.match(help.stdout, /\n {2}validate FILE\.jsonl \[--json\] /)
  t.equal(help.stderr, '')

  const validateHelp = await cli(['validate', '--help'])
  t.equal(validateHelp.code, 0)
  t.match(validateHelp.stdout, /^Usage: files-api validate FILE\.jsonl \[--json\]\n/)

  for (const [args, first] of [[[], 'files-api: missing a command.'], [['check', 'x.jsonl'], 'files-api: unknown command "check".'],
    [['--json'], 'files-api: Unknown option \'--json\'. To specify a positional argument starting with a \'-\', place it at the end of the command after \'--\', as in \'-- "--json"']] as const) {
    const got = await cli([...args])
    t.equal(got.code, 2, args.join(' '))
    t.equal(got.stdout, '')
    t.equal(got.stderr, `${first}\n${help.stdout}`)
  }
})

t.test('a file over 50 MiB with stderr piped: no progress output', async (t) => {
  // 6400 requests of 8 KiB: large enough for the progress threshold, within the default limits.
  const filler = 'x'.repeat(8 * 1024)
  const lines = Array.from({ length: 6400 }, (_, i) => line(String(i), { body: { model: 'batch-test-model', messages: [{ role: 'user', content: filler }] } }))
  const content = lines.join('\n') + '\n'
  t.ok(content.length > 50 * 1024 * 1024)
  const file = path.join(t.testdir({}), 'large.jsonl')
  await writeFile(file, content)
  const got = await cli(['validate', '--json', file])
  t.equal(got.code, 0)
  t.equal(got.stderr, '')
  t.equal((JSON.parse(got.stdout) as { requests: number, bytes: number }).requests, 6400)
})

/** The server's answer to a batch upload, and the CLI's --json report on the same bytes and settings. */
async function bothVerdicts (t: Test, filename: string, content: string, env: Record<string, string>) {
  const server = await startServer(t, env)
  const response = await postMultipart(`${server.url}/v1/files`, [
    { name: 'file', filename, content: Buffer.from(content) },
    { name: 'purpose', value: 'batch' }
  ], { key: KEY_A })
  const file = path.join(t.testdir({ [filename]: content }), filename)
  const run = await cli(['validate', '--json', file], env)
  return { status: response.status, error: (response.json() as { error: Record<string, unknown> }).error, code: run.code, report: JSON.parse(run.stdout) as Record<string, unknown> }
}

t.test('the CLI and the running server give the same verdict on the same file and settings', async (t) => {
  t.test('default settings: the same errors and error_count', async (t) => {
    const got = await bothVerdicts(t, 'bad.jsonl', INVALID, {})
    t.equal(got.status, 400)
    t.equal(got.error.code, 'invalid_batch_file')
    t.equal(got.code, 1)
    t.strictSame(got.error.errors, got.report.errors)
    t.equal(got.error.error_count, got.report.error_count)
    t.strictSame(got.report.errors, INVALID_ERRORS, 'and they are the errors this file has')
  })

  t.test('BATCH_MODEL_POLICY=reject on both sides: two models are an error on both', async (t) => {
    const content = [line('1', {}, 'model-a'), line('2', {}, 'model-b'), line('3', { method: 'PUT' }, 'model-a')].join('\n') + '\n'
    const got = await bothVerdicts(t, 'models.jsonl', content, { BATCH_MODEL_POLICY: 'reject' })
    t.equal(got.status, 400)
    t.equal(got.code, 1)
    t.strictSame(got.error.errors, got.report.errors)
    t.equal(got.error.error_count, got.report.error_count)
    t.strictSame(got.report.errors, [
      { code: 'model_mismatch', message: 'line 2: body.model "model-b" differs from "model-a" on line 1; a batch runs one model.', param: 'body.model', line: 2 },
      { code: 'invalid_method', message: 'line 3: method must be "POST", got "PUT".', param: 'method', line: 3 }
    ])
  })

  t.test('the filename rule: the server\'s one error is the CLI\'s file_error', async (t) => {
    const got = await bothVerdicts(t, 'bad.json', INVALID, {})
    t.equal(got.status, 400)
    t.equal(got.code, 1)
    t.strictSame(got.error.errors, got.report.errors)
    t.equal(got.error.error_count, got.report.error_count)
    t.strictSame(got.report.errors, [got.report.file_error])
    t.equal((got.report.file_error as BatchError).code, 'invalid_file_format')
  })

  t.test('BATCH_MAX_FILE_BYTES: the server\'s 413 is the CLI\'s file_error', async (t) => {
    const got = await bothVerdicts(t, 'big.jsonl', INVALID, { BATCH_MAX_FILE_BYTES: '64' })
    t.equal(got.status, 413)
    t.equal(got.code, 1)
    const fileError = got.report.file_error as BatchError
    t.strictSame([fileError.code, fileError.message, fileError.param], [got.error.code, got.error.message, got.error.param])
    t.equal(fileError.code, 'file_too_large')
  })
})
