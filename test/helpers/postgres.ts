import { randomBytes } from 'node:crypto'
import pg from 'pg'

/** Why PostgreSQL tests skip when there is no server; `.ci/run` always gives them one. */
export const NO_POSTGRES_REASON = 'TEST_DATABASE_URL is not set: PostgreSQL tests need a server; .ci/run provides one'

/** The server the tests may use (a superuser URL: tests create and drop databases), or undefined. */
export function testDatabaseUrl (): string | undefined {
  const url = process.env.TEST_DATABASE_URL
  return url === undefined || url === '' ? undefined : url
}

/** The part of a tap Test this helper needs. */
export interface TeardownHost {
  teardown: (fn: () => unknown) => void
}

/**
 * A new, empty database on the TEST_DATABASE_URL server, dropped in teardown; its URL.
 *
 * A database per store rather than a schema per store: Kysely's Migrator looks for its
 * bookkeeping tables in every schema of the database (PostgresIntrospector.getTables),
 * so a second schema would find the first one's and skip creating its own.
 */
export async function freshDatabase (t: TeardownHost, serverUrl: string): Promise<string> {
  const name = `files_api_t_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`
  await adminQuery(serverUrl, `create database "${name}"`)
  // FORCE ends connections still open (a store a test forgot, or one closing meanwhile).
  t.teardown(() => adminQuery(serverUrl, `drop database if exists "${name}" with (force)`))
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return url.toString()
}

async function adminQuery (serverUrl: string, text: string): Promise<void> {
  await withClient(serverUrl, async (client) => { await client.query(text) })
}

/** Runs `fn` with a plain client on `url`, closed afterwards. */
export async function withClient<T> (url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'files-api-tests' })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}
