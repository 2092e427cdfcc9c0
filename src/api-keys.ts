import { hash, randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { ConfigError } from './config.js'

/** Project names become part of object keys, so they are restricted to a safe alphabet. */
export const PROJECT_NAME = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,64}$/
const MIN_KEY_LENGTH = 16

/** A key that matched: its project, and the digest that names the key (never the key) to rate limits. */
export interface ApiKeyMatch {
  project: string
  keyId: string
}

export interface ApiKeyTable {
  /** The match for `key`, or undefined. Compares digests, so lookup time does not depend on how much of a key matched. */
  lookup: (key: string) => ApiKeyMatch | undefined
  readonly size: number
}

/**
 * One one-shot sha256 per presented key serves both the lookup and the keyId: every
 * authenticated request pays it, and two createHash objects cost a retrieve 7 µs of its
 * ~130 in the profile (docs/benchmarks.md, "Cheaper retrieves").
 */
function digest (key: string): string {
  return hash('sha256', key, 'base64url')
}

export function createApiKeyTable (entries: Iterable<[key: string, project: string]>): ApiKeyTable {
  const byDigest = new Map<string, ApiKeyMatch>()
  for (const [key, project] of entries) {
    const keyId = digest(key)
    byDigest.set(keyId, { project, keyId })
  }
  return {
    lookup: (key) => byDigest.get(digest(key)),
    get size () { return byDigest.size }
  }
}

/**
 * Parses `API_KEYS`: comma-separated `key=project`, a bare `key` belonging to project
 * `default`. Errors never repeat a key, only its position.
 */
export function parseApiKeys (text: string): ApiKeyTable {
  const entries: Array<[string, string]> = []
  const seen = new Set<string>()
  text.split(',').map((item) => item.trim()).forEach((item, index) => {
    if (item === '') return
    const eq = item.indexOf('=')
    const key = (eq === -1 ? item : item.slice(0, eq)).trim()
    const project = (eq === -1 ? 'default' : item.slice(eq + 1)).trim()
    const where = `API_KEYS entry ${index + 1}`
    if (key.length < MIN_KEY_LENGTH) throw new ConfigError(`invalid configuration: ${where}: a key must have at least ${MIN_KEY_LENGTH} characters`)
    if (/\s/.test(key)) throw new ConfigError(`invalid configuration: ${where}: a key must not contain white space`)
    if (!PROJECT_NAME.test(project)) throw new ConfigError(`invalid configuration: ${where}: project names are 1-64 of A-Z a-z 0-9 . _ -`)
    if (seen.has(key)) throw new ConfigError(`invalid configuration: ${where}: the same key is listed twice`)
    seen.add(key)
    entries.push([key, project])
  })
  if (entries.length === 0) throw new ConfigError('invalid configuration: API_KEYS is set but lists no key')
  return createApiKeyTable(entries)
}

export const GENERATED_KEY_FILE = 'api-key'

/**
 * With API_KEYS unset, the one-command start must still never be open: the first start
 * writes a random key for project `default` into DATA_DIR (mode 0600) and later starts
 * reuse it. Returns the table and the file's path (to log where it is, never the key).
 */
export async function loadOrCreateGeneratedKey (dataDir: string): Promise<{ table: ApiKeyTable, file: string, created: boolean }> {
  const file = path.resolve(dataDir, GENERATED_KEY_FILE)
  let key: string
  let created = false
  try {
    key = (await readFile(file, 'utf8')).trim()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    await mkdir(path.dirname(file), { recursive: true })
    key = `sk-${randomBytes(24).toString('base64url')}`
    try {
      // 'wx': two processes starting together must not overwrite each other's key.
      await writeFile(file, `${key}\n`, { mode: 0o600, flag: 'wx' })
      created = true
    } catch (raceError) {
      if ((raceError as NodeJS.ErrnoException).code !== 'EEXIST') throw raceError
      key = (await readFile(file, 'utf8')).trim()
    }
  }
  if (key.length < MIN_KEY_LENGTH) throw new ConfigError(`invalid configuration: the key in ${file} is too short; delete the file to generate a new one`)
  return { table: createApiKeyTable([[key, 'default']]), file, created }
}
