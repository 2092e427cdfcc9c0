import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import BetterSqlite3 from 'better-sqlite3'
import t from 'tap'
import { KEY_A, listTree } from '../helpers/app.js'
import { BOUNDARY } from '../helpers/multipart.js'
import { startServiceProcess } from '../helpers/process.js'
import { batchFileOf } from './helpers/batch.js'
import { multipartBytes, openRaw, rawUpload, uploadHead, uploadsCounted, waitForUploadsCounted } from './helpers/raw-http.js'
import { seededRandom } from '../helpers/seeded-random.js'

/*
 * Clients vanishing mid-upload, at 40 byte offsets: fixed ones at the places a parser
 * can get wrong (inside the boundary, the part headers, a multi-byte UTF-8 character,
 * the closing delimiter) and seeded random ones. Every cut must leave nothing (no
 * object, no temp file, no row), the server must stay healthy, and its memory must come
 * back: the real service runs as a child process, its RSS read from /proc after a GC
 * (the child gets --expose-gc and collects on SIGWINCH, a test-only preload: SIGUSR2
 * would close the service, close-with-grace listens to it; SIGWINCH is ignored by default).
 */

const CUTS = 40
const RSS_TOLERANCE_BYTES = 30 * 1024 * 1024

const body = await multipartBytes([
  { name: 'purpose', value: 'batch' },
  { name: 'file', filename: 'cut.jsonl', content: batchFileOf(4 * 1024 * 1024) }
])

/** Offsets strictly inside the body; the last 4 bytes (`--\r\n`) would let busboy finish. */
function cutOffsets (seed: number): Array<{ at: number, where: string }> {
  const find = (needle: string | Buffer, from = 0, last = false): number => {
    const i = last ? body.lastIndexOf(needle) : body.indexOf(needle, from)
    if (i < 0) throw new Error(`landmark ${String(needle)} not in the body`)
    return i
  }
  const fileHeaders = find('name="file"')
  const fileStart = find('\r\n\r\n', fileHeaders) + 4
  const han = Buffer.from('日')
  const emoji = Buffer.from('🙂')
  const middle = Math.floor(body.length / 2)
  const closing = find(`\r\n--${BOUNDARY}--`, 0, true)
  const fixed = [
    { at: 7, where: 'inside the first boundary' },
    { at: find('Content-Disposition') + 11, where: 'inside the purpose part\'s header' },
    { at: find('\r\n\r\nbatch') + 6, where: 'inside the purpose value' },
    { at: find(`--${BOUNDARY}`, 10) + 20, where: 'inside the file part\'s boundary' },
    { at: fileHeaders + 8, where: 'inside the file part\'s Content-Disposition' },
    { at: find('Content-Type: application/octet-stream') + 20, where: 'inside the file part\'s Content-Type' },
    { at: fileStart - 2, where: 'inside the blank line ending the part headers' },
    { at: fileStart, where: 'before the first byte of the file' },
    { at: find(han, fileStart) + 1, where: 'inside a 3-byte character of the first line' },
    { at: find(Buffer.from('é'), middle) + 1, where: 'inside a 2-byte character mid-file' },
    { at: find(emoji, middle) + 2, where: 'inside a 4-byte character mid-file' },
    { at: find(han, closing - 3000) + 2, where: 'inside a 3-byte character of the last line' },
    { at: closing + 1, where: 'inside the delimiter after the file' },
    { at: closing + 10, where: 'inside the closing boundary' },
    { at: body.length - 4, where: 'just before the closing --' }
  ]
  const random = seededRandom(seed)
  const offsets = [...fixed]
  while (offsets.length < CUTS) offsets.push({ at: 1 + Math.floor(random() * (body.length - 5)), where: 'at random' })
  return offsets
}

async function rssBytes (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]
  if (kib === undefined) throw new Error('no VmRSS in /proc/<pid>/status')
  return Number(kib) * 1024
}

const GC_ON_SIGNAL = `data:text/javascript,${encodeURIComponent('process.on("SIGWINCH", () => { globalThis.gc() })')}`

t.test(`a client disconnecting at ${CUTS} byte offsets leaves nothing behind, and the server stays healthy and lean`, async (t) => {
  const seed = Number(process.env.FAULT_SEED ?? 20240611)
  const dataDir = t.testdir({})
  const service = await startServiceProcess(t, {
    API_KEYS: `${KEY_A}=project-a`,
    DATA_DIR: dataDir,
    RECONCILE_INTERVAL_MS: '0',
    NODE_OPTIONS: `--expose-gc --import=${GC_ON_SIGNAL}`
  })
  const pid = service.child.pid ?? 0
  const blobs = path.join(dataDir, 'blobs')
  const db = new BetterSqlite3(path.join(dataDir, 'files.db'), { readonly: true })
  t.teardown(() => { db.close() })
  const rows = (): unknown => db.prepare('select count(*) as n from files').get()
  const settledRss = async (): Promise<number> => {
    service.child.kill('SIGWINCH')
    await sleep(300)
    return await rssBytes(pid)
  }

  // Warm-up: code paths compiled, buffers pooled, one stored file.
  const stored = await rawUpload(service.url, KEY_A, body)
  t.equal(stored?.status, 200, 'a whole upload is stored')
  const storedTree = await listTree(blobs)
  t.equal(storedTree.length, 1)
  const offsets = cutOffsets(seed)
  let counted = await uploadsCounted(service.url)
  const cutAt = async (i: number, at: number): Promise<void> => {
    const chunked = i % 2 === 1
    const connection = await openRaw(service.url)
    await connection.write(uploadHead(KEY_A, chunked ? undefined : body.length))
    const sent = body.subarray(0, at)
    // Chunked: one chunk announced whole and cut short, the cut inside the chunk.
    await connection.write(chunked ? Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), sent]) : sent)
    await sleep(15)
    if (Math.floor(i / 2) % 2 === 0) connection.socket.destroy()
    else connection.socket.resetAndDestroy()
    counted++
    await waitForUploadsCounted(service.url, counted)
  }
  for (let i = 0; i < 5; i++) await cutAt(i, offsets[i + 20]?.at ?? 1)
  const baseline = await settledRss()

  const started = Date.now()
  for (const [i, { at, where }] of offsets.entries()) {
    await cutAt(i, at)
    const tree = await listTree(blobs)
    if (JSON.stringify(tree) !== JSON.stringify(storedTree)) {
      t.fail(`cut ${i} at byte ${at} (${where}, seed ${seed}) left ${tree.join(', ')}`)
    }
  }
  t.pass(`${CUTS} cuts in ${Date.now() - started} ms, each answered by the server's cleanup`)
  t.same(await listTree(blobs), storedTree, 'no object or temp file beyond the stored one')
  t.same(rows(), { n: 1 }, 'no row beyond the stored one')

  t.equal((await fetch(`${service.url}/health`)).status, 200, 'healthy')
  const next = await rawUpload(service.url, KEY_A, body)
  t.equal(next?.status, 200, 'the next upload is stored')
  const after = await settledRss()
  t.ok(after - baseline <= RSS_TOLERANCE_BYTES,
    `RSS ${Math.round(after / 1048576)} MiB after the cuts, ${Math.round(baseline / 1048576)} MiB before (tolerance 30 MiB)`)
})
