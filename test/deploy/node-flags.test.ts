import { readFile } from 'node:fs/promises'
import t from 'tap'

/**
 * The V8 heap flags production runs with (docs/operations.md#memory) are written twice,
 * in `npm start` and in the Dockerfile's CMD: they must be the same flags, and the
 * entry must be the built server in both.
 */
t.test('npm start and the Dockerfile run the server with the same node flags', async (t) => {
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } }
  const start = pkg.scripts.start.split(/\s+/)
  const dockerfile = await readFile(new URL('../../Dockerfile', import.meta.url), 'utf8')
  const cmd = /^CMD (\[.*\])$/m.exec(dockerfile)
  t.ok(cmd, 'the Dockerfile has an exec-form CMD')
  const docker = JSON.parse(cmd?.[1] ?? '[]') as string[]
  t.equal(start[0], 'node')
  t.equal(docker[0], 'node')
  t.equal(start.at(-1), 'dist/src/server.js')
  t.equal(docker.at(-1), 'dist/src/server.js')
  t.same(docker.slice(1, -1), start.slice(1, -1))
  t.same(start.slice(1, -1), ['--max-semi-space-size=16', '--heap-growing-percent=50', '--scavenger-max-new-space-capacity-mb=4'], 'the flags docs/operations.md explains')
})
