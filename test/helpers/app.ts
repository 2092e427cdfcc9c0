import { readdir, stat } from 'node:fs/promises'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { createApiKeyTable } from '../../src/api-keys.js'
import { buildApp, type BuildAppOptions } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'

export const KEY_A = 'sk-test-project-a-0123456789'
export const KEY_B = 'sk-test-project-b-0123456789'

export interface TestServer {
  app: FastifyInstance
  /** `http://127.0.0.1:PORT` of the listening server. */
  url: string
  dataDir: string
  config: BuildAppOptions['config']
}

/**
 * Builds the app through the production `buildApp` and the production config loader,
 * on a temporary DATA_DIR (real fs storage, real SQLite), listening on a real socket.
 * Closed in teardown.
 */
export async function startServer (t: Test, env: Record<string, string> = {}, extra: Partial<BuildAppOptions> = {}): Promise<TestServer> {
  const dataDir = t.testdir({})
  // Load shedding on event-loop delay is off unless a test asks for it: on a busy
  // 2-core CI machine the delay alone would turn unrelated tests into 503s.
  const config = loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'silent', OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0', ...env })
  const keys = createApiKeyTable([[KEY_A, 'project-a'], [KEY_B, 'project-b']])
  const app = await buildApp({ config, keys, ...extra })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  return { app, url: `http://127.0.0.1:${address.port}`, dataDir, config }
}

/**
 * Every file under `dir` with its size, as `relative/path:size`, sorted: a snapshot of what
 * storage holds, without the deployment marker (written at every first start).
 */
export async function listTree (dir: string): Promise<string[]> {
  const out: string[] = []
  async function walk (current: string): Promise<void> {
    let entries
    try {
      entries = await readdir(current, { withFileTypes: true })
    } catch {
      return
    }
    for (const entry of entries) {
      const full = path.join(current, entry.name)
      if (entry.isDirectory()) await walk(full)
      else if (!path.relative(dir, full).endsWith(DEPLOYMENT_MARKER)) out.push(`${path.relative(dir, full)}:${(await stat(full)).size}`)
    }
  }
  await walk(dir)
  return out.sort()
}

/**
 * The deployment id object the service writes at its first start (src/reconcile/deployment.ts);
 * snapshots of stored files leave it out.
 */
export const DEPLOYMENT_MARKER = 'files/.deployment'

/** The blob files stored (temp files included), without the SQLite files and the deployment marker. */
export async function listBlobs (dataDir: string): Promise<string[]> {
  return listTree(path.join(dataDir, 'blobs'))
}

/**
 * The object key of a file, read from its row (expired or not): keys name the upload
 * (files/<project>/upload-<ULID>), the file id is minted only at commit.
 */
export async function objectKeyOf (app: FastifyInstance, fileId: string): Promise<string> {
  let after: string | undefined
  for (let rows = await app.fileStore.scan(after, 500); rows.length > 0; rows = await app.fileStore.scan(after, 500)) {
    const hit = rows.find((row) => row.id === fileId)
    if (hit !== undefined) return hit.storageKey
    after = rows.at(-1)?.id
  }
  throw new Error(`no row for ${fileId}`)
}
