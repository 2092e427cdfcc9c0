import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { ConfigSchema } from '../../schemas/config.js'

const run = promisify(execFile)
const root = new URL('../..', import.meta.url).pathname

async function hasDockerCompose (): Promise<boolean> {
  return run('docker-compose', ['version']).then(() => true, () => false)
}

t.test('docker-compose.yml is valid and only sets settings the service knows', async (t) => {
  if (!await hasDockerCompose()) {
    t.pass('skipped', { skip: 'docker-compose is not installed (.ci/run installs Debian\'s docker-compose to validate the file)' })
    return
  }
  const env = { ...process.env, API_KEYS: 'compose-test-key-0123456789=team-a' }
  const { stdout } = await run('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: root, env })
  t.match(stdout, /files-api-1:/)
  t.match(stdout, /files-api-2:/)
  t.match(stdout, /DATABASE_URL: postgres:\/\/files_api:/)

  const missing = await run('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], { cwd: root, env: { ...process.env, API_KEYS: '' } }).then(() => null, (e: { stderr: string }) => e.stderr)
  t.match(missing, /set API_KEYS/, 'refuses to start replicas without keys (each would generate its own)')

  const text = await readFile(new URL('../../docker-compose.yml', import.meta.url), 'utf8')
  const block = text.slice(text.indexOf('  environment:'), text.indexOf('  healthcheck:'))
  const names = [...block.matchAll(/^ {4}([A-Z0-9_]+):/gm)].map((m) => m[1] as string)
  t.ok(names.length > 5)
  for (const name of names) t.ok(name in ConfigSchema.properties, `${name} is a setting of the service`)
})

t.test('docker-compose.yml passes the upstream settings through, empty (unset) by default', async (t) => {
  if (!await hasDockerCompose()) {
    t.pass('skipped', { skip: 'docker-compose is not installed (.ci/run installs Debian\'s docker-compose to validate the file)' })
    return
  }
  const env = { ...process.env, API_KEYS: 'compose-test-key-0123456789=team-a', UPSTREAM_BASE_URL: '', UPSTREAM_API_KEY: '' }
  const unset = (await run('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: root, env })).stdout
  // Both replicas, each with both settings empty: loadConfig counts an empty value as unset.
  t.equal(unset.match(/^ {6}UPSTREAM_BASE_URL: ''$/gm)?.length, 2)
  t.equal(unset.match(/^ {6}UPSTREAM_API_KEY: ''$/gm)?.length, 2)
  const set = (await run('docker-compose', ['-f', 'docker-compose.yml', 'config'], {
    cwd: root, env: { ...env, UPSTREAM_BASE_URL: 'http://vllm:8000/v1', UPSTREAM_API_KEY: 'sk-compose-test' }
  })).stdout
  t.equal(set.match(/^ {6}UPSTREAM_BASE_URL: http:\/\/vllm:8000\/v1$/gm)?.length, 2)
  t.equal(set.match(/^ {6}UPSTREAM_API_KEY: sk-compose-test$/gm)?.length, 2)
})

t.test('the commented example upstreams are valid compose once uncommented', async (t) => {
  if (!await hasDockerCompose()) {
    t.pass('skipped', { skip: 'docker-compose is not installed (.ci/run installs Debian\'s docker-compose to validate the file)' })
    return
  }
  const text = await readFile(new URL('../../docker-compose.yml', import.meta.url), 'utf8')
  // Uncomment the service keys, their bodies (`  #   ...`) and the named volume; prose
  // comments (`  # then ...`) stay comments.
  const uncommented = text.split('\n').map((line) => /^ {2}# (vllm|litellm|huggingface-cache):$/.test(line) || line.startsWith('  #   ') ? `  ${line.slice(4)}` : line).join('\n')
  const dir = await mkdtemp(join(tmpdir(), 'files-api-compose-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  await writeFile(join(dir, 'docker-compose.yml'), uncommented)
  await writeFile(join(dir, 'litellm.yaml'), 'model_list: []\n')
  const env = { ...process.env, API_KEYS: 'compose-test-key-0123456789=team-a', UPSTREAM_API_KEY: 'sk-compose-test' }
  const { stdout } = await run('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: dir, env })
  t.match(stdout, /^ {2}vllm:$/m)
  t.match(stdout, /image: vllm\/vllm-openai:/)
  t.match(stdout, /^ {2}litellm:$/m)
  t.match(stdout, /LITELLM_MASTER_KEY: sk-compose-test/)
  const keyless = await run('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], { cwd: dir, env: { ...env, UPSTREAM_API_KEY: '' } }).then(() => null, (e: { stderr: string }) => e.stderr)
  t.match(keyless, /set UPSTREAM_API_KEY/, 'an example upstream refuses to start without the key files-api sends')
})
