import BetterSqlite3 from 'better-sqlite3'
import t from 'tap'
import { cachingStatements } from '../../src/metadata/statement-cache.js'

function openDatabase (): BetterSqlite3.Database {
  const sqlite = new BetterSqlite3(':memory:')
  sqlite.exec('create table kv (k text primary key, v text)')
  sqlite.prepare('insert into kv values (?, ?), (?, ?)').run('a', '1', 'b', '2')
  return sqlite
}

t.test('a repeated query reuses its statement; the least recently used is evicted past the size', async (t) => {
  const sqlite = openDatabase()
  let prepared = 0
  const counting = { close: () => sqlite.close(), prepare: (sql: string) => { prepared++; return sqlite.prepare(sql) } }
  const db = cachingStatements(counting, 2)
  const q1 = 'select v from kv where k = ?'
  const q2 = 'select k from kv where v = ?'
  const q3 = 'select count(*) as n from kv'
  const first = db.prepare(q1)
  t.equal(db.prepare(q1), first, 'the same statement object')
  t.same(db.prepare(q1).all(['b']), [{ v: '2' }], 'bound anew on each run')
  t.same(db.prepare(q1).all(['a']), [{ v: '1' }])
  t.equal(prepared, 1)
  db.prepare(q2)
  db.prepare(q1) // q1 is now the most recently used, q2 the least
  db.prepare(q3) // evicts q2
  t.equal(prepared, 3)
  t.equal(db.prepare(q1), first, 'kept: used more recently than q2')
  db.prepare(q2)
  t.equal(prepared, 4, 'q2 was evicted and is prepared again')
  db.close()
  t.equal(sqlite.open, false, 'close closes the database')
})

t.test('a statement still iterating is not handed out again: a fresh one runs beside it', async (t) => {
  const sqlite = openDatabase()
  const db = cachingStatements(sqlite)
  const sql = 'select k from kv order by k'
  const cached = db.prepare(sql)
  const open = cached.iterate([])
  t.same(open.next().value, { k: 'a' })
  const other = db.prepare(sql)
  t.not(other, cached, 'busy: another statement')
  t.same(other.all([]), [{ k: 'a' }, { k: 'b' }])
  t.same(open.next().value, { k: 'b' }, 'the open iteration goes on undisturbed')
  open.return?.()
  t.equal(db.prepare(sql), cached, 'done iterating: the cached one again')
  db.close()
})
