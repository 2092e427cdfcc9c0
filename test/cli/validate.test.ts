import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import type { BatchError } from '../../schemas/batch-error.js'
import { runValidate, VALIDATE_USAGE, type CliIo } from '../../src/cli/validate.js'
import { INVALID, INVALID_ERRORS, line } from './helpers/invalid-file.js'

const SAMPLE = new URL('../fixtures/test_model.jsonl', import.meta.url).pathname

interface Captured { text: string, isTTY: boolean, write: (text: string) => boolean }

function capture (isTTY = false): Captured {
  const out: Captured = { text: '', isTTY, write: (text) => { out.text += text; return true } }
  return out
}

/** Runs `files-api validate ARGV` in-process with an environment of exactly `env`. */
async function validate (argv: string[], env: Record<string, string> = {}, extra: Partial<CliIo> = {}, stderrIsTTY = false) {
  const stdout = capture()
  const stderr = capture(stderrIsTTY)
  const code = await runValidate(argv, { stdout, stderr, env, ...extra })
  return { code, stdout: stdout.text, stderr: stderr.text }
}

t.test('the sample file is valid: text report', async (t) => {
  const got = await validate([SAMPLE])
  t.equal(got.code, 0)
  t.equal(got.stderr, '')
  t.equal(got.stdout, [
    `${SAMPLE}: valid batch file`,
    '  requests  2',
    '  url       /v1/chat/completions',
    '  models    batch-test-model (2)',
    '  bytes     438',
    '  warnings  none',
    ''
  ].join('\n'))
})

t.test('the sample file is valid: --json', async (t) => {
  const got = await validate(['--json', SAMPLE])
  t.equal(got.code, 0)
  t.equal(got.stderr, '')
  t.ok(got.stdout.endsWith('}\n'), 'one JSON object and a newline')
  t.strictSame(JSON.parse(got.stdout), {
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

t.test('a file with faulty lines: every error, exit 1', async (t) => {
  const file = path.join(t.testdir({ 'bad.jsonl': INVALID }), 'bad.jsonl')
  const json = await validate([file, '--json'])
  t.equal(json.code, 1)
  t.equal(json.stderr, '')
  t.strictSame(JSON.parse(json.stdout), {
    valid: false,
    file,
    bytes: Buffer.byteLength(INVALID),
    requests: 5,
    url: '/v1/chat/completions',
    models: { 'batch-test-model': 4 },
    file_error: null,
    errors: INVALID_ERRORS,
    error_count: 4,
    warnings: [],
    warning_count: 0
  })

  const text = await validate([file])
  t.equal(text.code, 1)
  t.equal(text.stdout, [
    `${file}: invalid batch file, 4 errors`,
    ...INVALID_ERRORS.map((e) => `  ${e.message}`),
    '',
    '  requests  5',
    '  url       /v1/chat/completions',
    '  models    batch-test-model (4)',
    `  bytes     ${Buffer.byteLength(INVALID)}`,
    '  warnings  none',
    ''
  ].join('\n'))
})

t.test('more than 100 errors: the first 100 are listed, the count is exact', async (t) => {
  const content = Array.from({ length: 150 }, (_, i) => line(String(i), { method: 'GET' })).join('\n') + '\n'
  const file = path.join(t.testdir({ 'many.jsonl': content }), 'many.jsonl')
  const json = JSON.parse((await validate([file, '--json'])).stdout) as { errors: BatchError[], error_count: number }
  t.equal(json.errors.length, 100)
  t.equal(json.error_count, 150)
  t.strictSame(json.errors[99], { code: 'invalid_method', message: 'line 100: method must be "POST", got "GET".', param: 'method', line: 100 })
  const text = await validate([file])
  t.equal(text.code, 1)
  t.match(text.stdout, /^.*many\.jsonl: invalid batch file, 150 errors\n/)
  t.equal(text.stdout.split('\n').filter((l) => l.startsWith('  line ')).length, 100)
  t.ok(text.stdout.includes('\n  line 100: method must be "POST", got "GET".\n  (the first 100 of 150 errors are listed)\n\n  requests  150\n'))
})

t.test('two models: a warning by default, an error with BATCH_MODEL_POLICY=reject', async (t) => {
  const content = [line('1', {}, 'model-a'), line('2', {}, 'model-b'), line('3', {}, 'model-a')].join('\n') + '\n'
  const file = path.join(t.testdir({ 'two.jsonl': content }), 'two.jsonl')
  const mismatch: BatchError = {
    code: 'model_mismatch',
    message: 'line 2: body.model "model-b" differs from "model-a" on line 1; a batch runs one model.',
    param: 'body.model',
    line: 2
  }

  const warn = await validate([file])
  t.equal(warn.code, 0)
  t.equal(warn.stdout, [
    `${file}: valid batch file`,
    '  requests  3',
    '  url       /v1/chat/completions',
    '  models    model-a (2), model-b (1)',
    `  bytes     ${content.length}`,
    '  warnings  1',
    `    ${mismatch.message}`,
    ''
  ].join('\n'))
  const warnJson = JSON.parse((await validate([file, '--json'])).stdout) as Record<string, unknown>
  t.strictSame(warnJson.warnings, [mismatch])
  t.equal(warnJson.warning_count, 1)
  t.strictSame(warnJson.errors, [])

  const reject = await validate([file, '--json'], { BATCH_MODEL_POLICY: 'reject' })
  t.equal(reject.code, 1)
  const rejectJson = JSON.parse(reject.stdout) as Record<string, unknown>
  t.strictSame(rejectJson.errors, [mismatch])
  t.equal(rejectJson.error_count, 1)
  t.strictSame(rejectJson.warnings, [])
})

t.test('the filename rule: a name not ending in .jsonl is refused, its lines unchecked', async (t) => {
  const file = path.join(t.testdir({ 'batch.json': INVALID }), 'batch.json')
  const refusal: BatchError = {
    code: 'invalid_file_format',
    message: 'The file "batch.json" is not a batch file: its name must end in .jsonl (one JSON request per line).',
    param: 'file',
    line: null
  }
  const json = await validate([file, '--json'])
  t.equal(json.code, 1)
  t.strictSame(JSON.parse(json.stdout), {
    valid: false,
    file,
    bytes: Buffer.byteLength(INVALID),
    requests: 0,
    url: null,
    models: {},
    file_error: refusal,
    errors: [refusal],
    error_count: 1,
    warnings: [],
    warning_count: 0
  })
  const text = await validate([file])
  t.equal(text.code, 1)
  t.equal(text.stdout, [
    `${file}: invalid batch file, refused as a whole (invalid_file_format)`,
    `  ${refusal.message}`,
    '  Its lines were not checked: the server stops at this rule too.',
    `  bytes     ${Buffer.byteLength(INVALID)}`,
    ''
  ].join('\n'))
})

t.test('BATCH_MAX_FILE_BYTES: a larger file is refused with the server\'s 413 message', async (t) => {
  const file = path.join(t.testdir({ 'big.jsonl': INVALID }), 'big.jsonl')
  const json = await validate([file, '--json'], { BATCH_MAX_FILE_BYTES: '100' })
  t.equal(json.code, 1)
  const tooLarge: BatchError = {
    code: 'file_too_large',
    message: 'File is too large: the limit for purpose \'batch\' is 100 bytes (0 MiB).',
    param: 'file',
    line: null
  }
  const report = JSON.parse(json.stdout) as Record<string, unknown>
  t.strictSame(report.file_error, tooLarge)
  t.strictSame(report.errors, [tooLarge])
  t.equal(report.error_count, 1)
  t.equal(report.bytes, Buffer.byteLength(INVALID))
  t.equal(report.valid, false)

  const exact = await validate([file, '--json'], { BATCH_MAX_FILE_BYTES: String(Buffer.byteLength(INVALID)) })
  t.equal((JSON.parse(exact.stdout) as { file_error: unknown }).file_error, null, 'a file of exactly the limit is checked')
})

t.test('an endless device is read only up to the limit, not to its end', { skip: process.platform === 'win32' && 'no /dev/zero' }, async (t) => {
  const dir = t.testdir({ 'zeros.jsonl': t.fixture('symlink', '/dev/zero') })
  const got = await validate([path.join(dir, 'zeros.jsonl'), '--json'], { BATCH_MAX_FILE_BYTES: '4096' })
  t.equal(got.code, 1)
  const report = JSON.parse(got.stdout) as { file_error: BatchError | null, bytes: number }
  t.equal(report.file_error?.code, 'file_too_large')
  t.equal(report.bytes, 1024 * 1024, 'stopped after the first 1 MiB chunk')
})

t.test('usage and IO errors exit 2 with a message on stderr and nothing on stdout', async (t) => {
  const dir = t.testdir({ 'ok.jsonl': INVALID, sub: {} })
  const cases: Array<[string[], Record<string, string>, string]> = [
    [[path.join(dir, 'missing.jsonl')], {}, `files-api validate: cannot read ${JSON.stringify(path.join(dir, 'missing.jsonl'))}: no such file (ENOENT)\n`],
    [[path.join(dir, 'sub')], {}, `files-api validate: cannot read ${JSON.stringify(path.join(dir, 'sub'))}: it is a directory (EISDIR)\n`],
    [[], {}, 'files-api validate: missing the FILE to check.\nRun \'files-api validate --help\' for usage.\n'],
    [['a.jsonl', 'b.jsonl'], {}, 'files-api validate: expected one FILE, got 2.\nRun \'files-api validate --help\' for usage.\n'],
    [[path.join(dir, 'ok.jsonl'), '--jsn'], {}, 'files-api validate: Unknown option \'--jsn\'. To specify a positional argument starting with a \'-\', place it at the end of the command after \'--\', as in \'-- "--jsn"\nRun \'files-api validate --help\' for usage.\n'],
    [[path.join(dir, 'ok.jsonl')], { BATCH_MAX_REQUESTS: 'abc' }, 'files-api validate: invalid configuration: BATCH_MAX_REQUESTS="abc": must be integer\n'],
    [[path.join(dir, 'ok.jsonl')], { BATCH_MODEL_POLICY: 'maybe' }, 'files-api validate: invalid configuration: BATCH_MODEL_POLICY="maybe": must be one of warn, reject\n']
  ]
  for (const [argv, env, stderr] of cases) {
    const got = await validate(argv, env)
    t.equal(got.code, 2, argv.join(' '))
    t.equal(got.stderr, stderr)
    t.equal(got.stdout, '')
  }
})

t.test('--help prints the usage and exits 0', async (t) => {
  for (const flag of ['--help', '-h']) {
    const got = await validate([flag])
    t.equal(got.code, 0)
    t.equal(got.stdout, VALIDATE_USAGE)
    t.equal(got.stderr, '')
  }
  t.match(VALIDATE_USAGE, /^Usage: files-api validate FILE\.jsonl \[--json\]\n/)
  for (const field of ['"valid"', '"file"', '"bytes"', '"requests"', '"url"', '"models"', '"file_error"', '"errors"', '"error_count"', '"warnings"', '"warning_count"', 'file_too_large', 'invalid_file_format']) {
    t.ok(VALIDATE_USAGE.includes(field), `the help documents ${field}`)
  }
})

/** `count` lines of exactly `size` bytes each (newline included), all valid requests. */
function fixedLines (count: number, size: number): string {
  const lines: string[] = []
  for (let i = 1; i <= count; i++) {
    const bare = line(String(i)).length
    lines.push(line(String(i), { body: { model: 'batch-test-model', messages: [{ role: 'user', content: 'x'.repeat(size - 1 - bare + `hello ${i}`.length) }] } }))
  }
  return lines.join('\n') + '\n'
}

t.test('progress: on a TTY for a large file, one \\r line per update, cleared at the end', async (t) => {
  const content = fixedLines(2560, 1024)
  t.equal(content.length, 2.5 * 1024 * 1024)
  const file = path.join(t.testdir({}), 'large.jsonl')
  await writeFile(file, content)

  const got = await validate([file, '--json'], {}, { progressMinBytes: 2 * 1024 * 1024, progressIntervalMs: 0 }, true)
  t.equal(got.code, 0)
  const updates = [
    'validating: 40% (1.0 of 2.5 MiB), 1024 lines, 0 errors',
    'validating: 80% (2.0 of 2.5 MiB), 2048 lines, 0 errors',
    'validating: 100% (2.5 of 2.5 MiB), 2560 lines, 0 errors'
  ]
  t.equal(got.stderr, updates.map((u) => `\r${u}`).join('') + `\r${' '.repeat(updates[2]?.length ?? 0)}\r`)
  t.equal((JSON.parse(got.stdout) as { requests: number }).requests, 2560, 'stdout carries only the report')

  const small = await validate([file], {}, { progressMinBytes: content.length, progressIntervalMs: 0 }, true)
  t.equal(small.stderr, '', 'not for a file at or below the threshold')
  const notTty = await validate([file], {}, { progressMinBytes: 0, progressIntervalMs: 0 }, false)
  t.equal(notTty.stderr, '', 'never when stderr is not a TTY')
  t.equal(notTty.code, 0)
})
