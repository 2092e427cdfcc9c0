import path from 'node:path'
import { Readable } from 'node:stream'
import t from 'tap'
import { transitionBatch } from '../../src/batches/lifecycle.js'
import { partKey } from '../../src/batches/result-files.js'
import { removeStaleParts } from '../../src/batches/stale-parts.js'
import { createFsBlobStore } from '../../src/storage/fs-blob-store.js'
import { sqliteBatchDb } from './helpers/batch-db.js'
import { runningBatch } from './queue-contract.js'

const PREFIX = 'files/'

t.test('stale parts: a terminal batch\'s and a zombie epoch\'s go, the current epoch\'s and unknown batches\' stay', async (t) => {
  const b = await sqliteBatchDb(t)
  const store = await createFsBlobStore({ root: path.join(t.testdirName, 'blobs') })
  t.teardown(() => store.close())
  const running = await runningBatch(b, 'p', 2)
  const finished = await runningBatch(b, 'p', 1)
  await b.db.updateTable('batch_chunks').set({ lease_epoch: 2 }).where('batch_id', '=', running).execute()
  await transitionBatch(b.db, b.dialect, { id: finished }, 'cancelling')
  await transitionBatch(b.db, b.dialect, { id: finished }, 'cancelled')
  const put = async (key: string): Promise<string> => {
    await store.put(key, Readable.from([Buffer.from('{}\n')]))
    return key
  }
  const needed = await put(partKey(PREFIX, running, 0, 2, 'output'))
  const zombie = await put(partKey(PREFIX, running, 1, 1, 'output'))
  const leftover = await put(partKey(PREFIX, finished, 0, 1, 'error'))
  const foreign = await put(partKey(PREFIX, 'batch_NOTINTHISDATABASE', 0, 1, 'output'))
  const odd = await put(`${PREFIX}batch-parts/not-a-part`)

  const young = await removeStaleParts({ blobStore: store, db: b.db, prefix: PREFIX, cutoffMs: Date.now() - 60_000 })
  t.same(young, { scanned: 5, removed: [], unknown: 0 }, 'nothing younger than the grace is touched')

  const dry = await removeStaleParts({ blobStore: store, db: b.db, prefix: PREFIX, cutoffMs: Date.now() + 1000, dryRun: true })
  t.same(dry.removed.sort(), [leftover, zombie].sort())
  const keys = async (): Promise<string[]> => {
    const out: string[] = []
    for await (const o of store.list(`${PREFIX}batch-parts/`)) out.push(o.key)
    return out.sort()
  }
  t.same(await keys(), [needed, zombie, leftover, foreign, odd].sort(), 'a dry run removes nothing')

  const real = await removeStaleParts({ blobStore: store, db: b.db, prefix: PREFIX, cutoffMs: Date.now() + 1000 })
  t.same(real, { scanned: 5, removed: dry.removed, unknown: 2 })
  t.same(await keys(), [needed, foreign, odd].sort())
})
