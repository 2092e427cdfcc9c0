import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import type { Test } from 'tap'
import { listBlobs, startServer, type TestServer } from './app.js'
import { freshDatabase, testDatabaseUrl } from './postgres.js'
import { bucketClient, serviceEnv, startS3Server } from './s3-server.js'

/**
 * The Uploads API tests run on both drivers: fs (a temporary DATA_DIR) and the real S3
 * server of services.env (s3rver without it). `leftovers` is what storage holds besides
 * the files: part objects, fs temp files, unfinished S3 multipart uploads. The fs runs
 * keep their metadata in SQLite, the s3 runs in PostgreSQL (TEST_DATABASE_URL; SQLite
 * without it), so the upload store's queries run on both dialects.
 */
export interface UploadsServer extends TestServer {
  driver: 'fs' | 's3'
  dialect: 'sqlite' | 'postgres'
  /** Part objects, temp files and unfinished multipart uploads, as `kind:key`; [] when clean. */
  leftovers: () => Promise<string[]>
  /** Every object (fs: blob file) besides the deployment marker, as `key:size`. */
  objects: () => Promise<string[]>
  /** Whether the server can list unfinished multipart uploads (s3rver cannot). */
  listsMultipart: boolean
}

export const DRIVERS = ['fs', 's3'] as const

export async function startUploadsServer (t: Test, driver: 'fs' | 's3', env: Record<string, string> = {}, now?: () => number): Promise<UploadsServer> {
  const extra = now === undefined ? {} : { now }
  if (driver === 'fs') {
    const server = await startServer(t, env, extra)
    const objects = async (): Promise<string[]> => (await listBlobs(server.dataDir)).filter((entry) => !entry.startsWith('.tmp/'))
    return {
      ...server,
      driver,
      dialect: 'sqlite',
      listsMultipart: true,
      objects,
      leftovers: async () => (await listBlobs(server.dataDir)).filter((entry) => entry.startsWith('.tmp/') || entry.startsWith('files/upload-parts/')).map((entry) => `fs:${entry}`)
    }
  }
  const s3 = await startS3Server(t)
  const pgServer = testDatabaseUrl()
  const database: Record<string, string> = pgServer === undefined ? {} : { DATABASE_URL: await freshDatabase(t, pgServer) }
  const server = await startServer(t, { ...serviceEnv(s3), ...database, ...env }, extra)
  const client = bucketClient(s3, t)
  const list = async (prefix?: string): Promise<string[]> => ((await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }))).Contents ?? [])
    .filter((o) => o.Key !== 'files/.deployment').map((o) => `${o.Key ?? ''}:${o.Size ?? 0}`).sort()
  return {
    ...server,
    driver,
    dialect: pgServer === undefined ? 'sqlite' : 'postgres',
    listsMultipart: s3.supports.listMultipartUploads,
    objects: async () => list(),
    leftovers: async () => {
      const parts = (await list('files/upload-parts/')).map((key) => `object:${key}`)
      if (!s3.supports.listMultipartUploads) return parts
      const unfinished = (await client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket }))).Uploads ?? []
      return [...parts, ...unfinished.map((u) => `multipart:${u.Key ?? ''}`)]
    }
  }
}

/** JSON over a real socket, with project A's key unless told otherwise. */
export async function postJson (url: string, key: string, body: unknown): Promise<{ status: number, json: () => Record<string, any> }> {
  const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const text = await res.text()
  return { status: res.status, json: () => JSON.parse(text) as Record<string, any> }
}
