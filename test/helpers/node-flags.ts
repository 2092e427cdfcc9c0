import { readFileSync } from 'node:fs'

/**
 * The node flags `npm start` runs the server with (package.json's start script, the same
 * as the Dockerfile's CMD; test/deploy/node-flags.test.ts keeps the two equal). Server
 * processes in tests and the bench get them too, so they run as production does.
 */
export function productionNodeArgs (): string[] {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } }
  return pkg.scripts.start.split(/\s+/).slice(1, -1).filter((w) => w.startsWith('--'))
}
