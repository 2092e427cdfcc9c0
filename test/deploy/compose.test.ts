import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
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
