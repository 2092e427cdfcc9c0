import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { KEY_A, startServer, type TestServer } from '../helpers/app.js'
import { getJson, postMultipart } from '../helpers/multipart.js'
import { freshDatabase, NO_POSTGRES_REASON, testDatabaseUrl } from '../helpers/postgres.js'
import { batch, filePart, line, manualUpload, purpose } from '../operations/helpers/batch.js'

/**
 * Ids are minted at commit (issue 9, item 6): a client paging with `after=<last id>`
 * never skips a file whose upload started before another's but finished after it, nor
 * sees one twice. Real sockets, on SQLite and on PostgreSQL.
 */

interface Page { ids: string[], hasMore: boolean }

async function page (server: TestServer, order: 'asc' | 'desc', limit: number, after?: string): Promise<Page> {
  const res = await getJson(`${server.url}/v1/files?order=${order}&limit=${limit}${after === undefined ? '' : `&after=${after}`}`, KEY_A)
  if (res.status !== 200) throw new Error(`list answered ${res.status}: ${res.body}`)
  const body = res.json() as { data: Array<{ id: string }>, has_more: boolean }
  return { ids: body.data.map((f) => f.id), hasMore: body.has_more }
}

/** Follows has_more from `after` to the end, as a client does; returns every id seen. */
async function pageOn (server: TestServer, order: 'asc' | 'desc', limit: number, after?: string): Promise<string[]> {
  const seen: string[] = []
  let cursor = after
  for (;;) {
    const p = await page(server, order, limit, cursor)
    seen.push(...p.ids)
    cursor = p.ids.at(-1) ?? cursor
    if (!p.hasMore) return seen
  }
}

async function uploadOne (server: TestServer, i: number): Promise<string> {
  const res = await postMultipart(`${server.url}/v1/files`, [purpose('batch'), filePart(batch(2), `f${i}.jsonl`)], { key: KEY_A })
  if (res.status !== 200) throw new Error(`upload answered ${res.status}: ${res.body}`)
  return res.json().id as string
}

function orderSuite (name: string, start: (t: Test) => Promise<TestServer>): void {
  t.test(`${name}: an upload that started first but finished last is seen by a client paging on`, async (t) => {
    const server = await start(t)
    const a = manualUpload(server.url, { authorization: `Bearer ${KEY_A}` })
    await a.write(Buffer.from(line('a1') + '\n'))
    await sleep(200)
    const b = await uploadOne(server, 1)

    t.strictSame(await pageOn(server, 'asc', 1), [b], 'asc: only B is committed')
    t.strictSame(await pageOn(server, 'desc', 1), [b], 'desc: only B is committed')

    await a.write(Buffer.from(line('a2') + '\n'))
    a.finish()
    const res = await a.response
    t.equal(res.status, 200, res.body)
    const aId = (JSON.parse(res.body) as { id: string }).id
    t.ok(aId > b, 'A, committed after B, has the greater id')

    t.strictSame(await pageOn(server, 'asc', 1, b), [aId], 'asc after B: A, which the old ids skipped')
    t.strictSame(await pageOn(server, 'desc', 1, b), [], 'desc after B: nothing older, nothing repeated')
    t.strictSame(await pageOn(server, 'asc', 1), [b, aId], 'asc from the start: each once')
    t.strictSame(await pageOn(server, 'desc', 1), [aId, b], 'desc from the start: each once')
    t.strictSame(await pageOn(server, 'desc', 1, aId), [b], 'desc after A: B')
  })

  t.test(`${name}: 20 uploads at once, a client paging asc by 3 meanwhile sees each exactly once`, async (t) => {
    const server = await start(t)
    let uploading = true
    const uploads = Promise.all(Array.from({ length: 20 }, async (_, i) => uploadOne(server, i))).finally(() => { uploading = false })
    const seen: string[] = []
    const poll = async (): Promise<void> => {
      const more = await pageOn(server, 'asc', 3, seen.at(-1))
      seen.push(...more)
    }
    while (uploading) {
      await poll()
      await sleep(5)
    }
    const ids = await uploads
    await poll()
    t.equal(seen.length, 20, 'no file seen twice')
    t.strictSame([...seen].sort(), [...ids].sort(), 'every file seen')
    t.strictSame(seen, [...seen].sort(), 'in id order')
    const desc = await pageOn(server, 'desc', 3)
    t.strictSame(desc, [...seen].reverse(), 'desc by 3: every file once, newest first')
  })
}

// 20 uploads at once: past the default MAX_CONCURRENT_UPLOADS (8).
const UPLOADS = { MAX_CONCURRENT_UPLOADS: '32' }
orderSuite('sqlite', async (t) => await startServer(t, UPLOADS))

const serverUrl = testDatabaseUrl()
if (serverUrl === undefined) {
  t.test('postgres', { skip: NO_POSTGRES_REASON }, async () => {})
} else {
  orderSuite('postgres', async (t) => await startServer(t, { ...UPLOADS, DATABASE_URL: await freshDatabase(t, serverUrl) }))
}
