import { Buffer } from 'node:buffer'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import { planBatchInput, readChunkLines, type BatchPlan } from '../../src/batches/plan.js'
import { LineSplitter } from '../../src/jsonl/line-splitter.js'
import type { BlobStore } from '../../src/storage/blob-store.js'
import { createFsBlobStore } from '../../src/storage/fs-blob-store.js'

const MAX_LINE = 1024 * 1024

async function fsStore (t: Test): Promise<BlobStore> {
  const store = await createFsBlobStore({ root: path.join(t.testdir(), 'blobs') })
  t.teardown(() => store.close())
  return store
}

/** Every line the splitter (hence the validator) sees in the whole file, blank ones left out, with its number. */
function expectedLines (bytes: Buffer): Array<{ lineNo: number, line: string }> {
  const out: Array<{ lineNo: number, line: string }> = []
  const s = new LineSplitter({
    maxLineBytes: MAX_LINE,
    onLine: (line, n) => { if (!/^[ \t]*$/.test(line.toString('latin1'))) out.push({ lineNo: n, line: line.toString('hex') }) },
    onOversizedLine: () => { throw new Error('oversized') }
  })
  s.push(bytes)
  s.end()
  return out
}

async function checkPlan (t: Test, store: BlobStore, key: string, bytes: Buffer, plan: BatchPlan): Promise<void> {
  t.equal(plan.bytes, bytes.length, 'bytes of the whole file')
  // The ranges cover the file exactly, in order, without overlap; seq numbers 0…
  let at = 0
  let line = 1
  for (const [i, c] of plan.chunks.entries()) {
    t.equal(c.seq, i)
    t.equal(c.byteStart, at, `chunk ${i} starts where the one before ended`)
    t.ok(c.byteEnd > c.byteStart)
    t.equal(c.lineStart, line)
    at = c.byteEnd
    line = c.lineEnd
  }
  t.equal(at, bytes.length, 'the last chunk ends at the end of the file')
  const expected = expectedLines(bytes)
  t.equal(plan.requests, expected.length)
  const read: Array<{ lineNo: number, line: string }> = []
  for (const c of plan.chunks) {
    const mine: number[] = []
    for await (const l of readChunkLines(store, key, c, MAX_LINE)) {
      mine.push(l.lineNo)
      read.push({ lineNo: l.lineNo, line: l.line.toString('hex') })
    }
    t.equal(mine.length, c.requests, `chunk ${c.seq} holds its requests`)
    t.ok(mine.every((n) => n >= c.lineStart && n < c.lineEnd), `chunk ${c.seq}'s lines lie in its line range`)
  }
  t.same(read, expected, 'every line read back byte for byte with its physical number')
}

async function put (store: BlobStore, key: string, bytes: Buffer): Promise<void> {
  await store.put(key, Readable.from([bytes]))
}

t.test('the seed file, one line per chunk and all in one', async (t) => {
  const store = await fsStore(t)
  const bytes = await readFile(new URL('../fixtures/test_model.jsonl', import.meta.url))
  await put(store, 'in/seed', bytes)
  const one = await planBatchInput(store, 'in/seed', { maxLines: 1, maxBytes: 1 << 20 })
  t.equal(one.chunks.length, 2)
  await checkPlan(t, store, 'in/seed', bytes, one)
  const all = await planBatchInput(store, 'in/seed', { maxLines: 100, maxBytes: 1 << 20 })
  t.same(all.chunks, [{ seq: 0, byteStart: 0, byteEnd: bytes.length, lineStart: 1, lineEnd: 3, requests: 2 }])
})

t.test('a generated 10,000-line file in small reads: limits by lines and by bytes', async (t) => {
  const store = await fsStore(t)
  const lines: string[] = []
  for (let i = 1; i <= 10_000; i++) {
    const text = 'x'.repeat(i % 97) + 'é'.repeat(i % 5)
    lines.push(JSON.stringify({ custom_id: `r${i}`, method: 'POST', url: '/v1/chat/completions', body: { model: 'm', messages: [{ role: 'user', content: text }] } }))
  }
  const bytes = Buffer.from(lines.join('\n') + '\n')
  await put(store, 'in/gen', bytes)
  const byLines = await planBatchInput(store, 'in/gen', { maxLines: 333, maxBytes: 1 << 30 })
  t.equal(byLines.chunks.length, Math.ceil(10_000 / 333))
  t.ok(byLines.chunks.slice(0, -1).every((c) => c.requests === 333))
  await checkPlan(t, store, 'in/gen', bytes, byLines)
  const byBytes = await planBatchInput(store, 'in/gen', { maxLines: 1_000_000, maxBytes: 16 * 1024 })
  t.ok(byBytes.chunks.every((c) => c.byteEnd - c.byteStart <= 16 * 1024), 'no chunk over maxBytes')
  t.ok(byBytes.chunks.length > 40)
  await checkPlan(t, store, 'in/gen', bytes, byBytes)
})

t.test('BOM, CRLF, a last line without LF, trailing blank lines: the validator\'s numbering', async (t) => {
  const store = await fsStore(t)
  const req = (id: string): string => JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/embeddings', body: { model: 'e', input: 'a' } })
  const cases: Record<string, Buffer> = {
    bom: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${req('a')}\r\n${req('b')}\r\n`)]),
    noFinalLf: Buffer.from(`${req('a')}\n${req('b')}\n${req('c')}`),
    trailingBlanks: Buffer.from(`${req('a')}\n${req('b')}\n\n \t\r\n\n`),
    crOnly: Buffer.from(`${req('a')}\r\n${req('b')}\r\n\r\n`),
    // Refused by the validator (blank before a request), yet a plan of it still covers the file.
    leadingBlank: Buffer.from(`\n \n${req('a')}\n${req('b')}\n`),
    shortBomPrefix: Buffer.from([0xef, 0xbb, 0x0a, ...Buffer.from(`${req('a')}\n`)])
  }
  for (const [name, bytes] of Object.entries(cases)) {
    await put(store, `in/${name}`, bytes)
    for (const maxLines of [1, 2, 10]) {
      const plan = await planBatchInput(store, `in/${name}`, { maxLines, maxBytes: 1 << 20 })
      await t.test(`${name}, ${maxLines} per chunk`, async (t) => checkPlan(t, store, `in/${name}`, bytes, plan))
    }
  }
  await put(store, 'in/blank', Buffer.from('\n  \n'))
  await t.rejects(planBatchInput(store, 'in/blank', { maxLines: 1, maxBytes: 10 }), /no request line/)
})

t.test('a line longer than maxBytes gets a chunk of its own', async (t) => {
  const store = await fsStore(t)
  const bytes = Buffer.from(`{"a":1}\n{"b":"${'z'.repeat(100)}"}\n{"c":3}\n`)
  await put(store, 'in/long', bytes)
  const plan = await planBatchInput(store, 'in/long', { maxLines: 10, maxBytes: 20 })
  t.same(plan.chunks.map((c) => [c.lineStart, c.lineEnd]), [[1, 2], [2, 3], [3, 4]])
  await checkPlan(t, store, 'in/long', bytes, plan)
})
