import { randomUUID } from 'node:crypto'
import { Readable } from 'node:stream'
import type { FileStore } from '../metadata/file-store.js'
import { BlobNotFoundError, type BlobStore } from '../storage/blob-store.js'

/** Where the store keeps the deployment id: inside the prefix, so a shared bucket holds one per deployment. */
export function deploymentMarkerKey (prefix: string): string {
  return `${prefix}.deployment`
}

export interface DeploymentSides {
  fileStore: FileStore
  blobStore: BlobStore
  prefix: string
  /** The database, for messages: a URL without its password, or the SQLite path. */
  database: string
  /** The store, for messages: the blob folder, or the bucket and prefix. */
  storage: string
}

/** The database and the store do not belong together: start-up stops with this message. */
export class DeploymentMismatchError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'DeploymentMismatchError'
  }
}

/**
 * At the first start records a random deployment id in both the database and the store;
 * at every start checks they agree. A database pointed at another deployment's store (or
 * at an empty one: an unmounted volume, a wrong bucket), or a fresh database pointed at
 * an existing store, stops start-up before anything is reconciled (issue 9, item 4).
 *
 * Both missing: created in both (a first start, or a deployment from before ids; what
 * looks unsafe then is reconciliation's to refuse). One missing: adopted only when
 * neither side holds any file (a first start that crashed between the two writes);
 * otherwise refused. Both present and different: refused.
 */
export async function ensureDeploymentIdentity (sides: DeploymentSides): Promise<string> {
  const key = deploymentMarkerKey(sides.prefix)
  const [inDatabase, inStore] = await Promise.all([sides.fileStore.readDeploymentId(), readMarker(sides.blobStore, key)])
  const where = `database ${sides.database} and storage ${sides.storage}`
  if (inDatabase !== null && inStore !== null) {
    if (inDatabase === inStore) return inDatabase
    throw new DeploymentMismatchError(`${where} belong to different deployments (database id ${inDatabase}, storage id ${inStore}); refusing to start. Point both at the same deployment.`)
  }
  if (inDatabase === null && inStore === null) {
    const id = await sides.fileStore.recordDeploymentId(randomUUID())
    await writeMarker(sides.blobStore, key, id)
    return id
  }
  const databaseHasFiles = (await sides.fileStore.scan(undefined, 1)).length > 0
  const storeHasFiles = await hasObjects(sides.blobStore, sides.prefix, key)
  if (databaseHasFiles || storeHasFiles) {
    const [has, lacks] = inDatabase !== null ? [`database ${sides.database}`, `storage ${sides.storage}`] : [`storage ${sides.storage}`, `database ${sides.database}`]
    const id = inDatabase ?? inStore ?? ''
    throw new DeploymentMismatchError(`${has} records deployment ${id} but ${lacks} records none, and ${databaseHasFiles ? 'the database' : 'the storage'} holds files: ` +
      `one of them is empty or belongs elsewhere (an unmounted volume, a wrong bucket, a fresh database); refusing to start. ` +
      `If this pairing is right, record the id on the other side (${inDatabase !== null ? `the object ${key}` : 'the table files_api_deployment'}) with the value ${id}.`)
  }
  if (inDatabase !== null) {
    await writeMarker(sides.blobStore, key, inDatabase)
    return inDatabase
  }
  return await sides.fileStore.recordDeploymentId(inStore ?? '')
}

async function readMarker (store: BlobStore, key: string): Promise<string | null> {
  // head first: a missing marker is the normal first start, not a failed get in /metrics.
  if (await store.head(key) === null) return null
  let got
  try {
    got = await store.get(key)
  } catch (err) {
    if (err instanceof BlobNotFoundError) return null
    throw err
  }
  const chunks: Buffer[] = []
  for await (const chunk of got.body as AsyncIterable<Buffer>) chunks.push(chunk)
  const id = Buffer.concat(chunks).toString('utf8').trim()
  return id === '' ? null : id
}

async function writeMarker (store: BlobStore, key: string, id: string): Promise<void> {
  await store.put(key, Readable.from([Buffer.from(`${id}\n`)]), { contentType: 'text/plain' })
}

async function hasObjects (store: BlobStore, prefix: string, marker: string): Promise<boolean> {
  for await (const object of store.list(prefix)) if (object.key !== marker) return true
  return false
}
