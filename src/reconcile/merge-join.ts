import { compareKeys } from '../storage/blob-store.js'

export interface Keyed<T> { key: string, value: T }

export interface JoinedPair<L, R> {
  key: string
  object?: L
  row?: R
}

/** Thrown when a listing is not in ascending key order: a merge join over it would be wrong. */
export class ListingOrderError extends Error {
  constructor (side: string, previous: string, key: string) {
    super(`the ${side} listing is not in key order (${JSON.stringify(key)} after ${JSON.stringify(previous)}): reconciliation stopped, nothing removed`)
    this.name = 'ListingOrderError'
  }
}

/**
 * Full outer join of two listings ordered by key (bytewise), one pass over each: pairs
 * with both sides, or the one side that has the key. A listing that goes backwards
 * throws instead of yielding false orphans (a driver listing in another order, a
 * collation that is not bytewise).
 */
export async function * mergeJoin<L, R> (objects: AsyncIterable<Keyed<L>>, rows: AsyncIterable<Keyed<R>>): AsyncGenerator<JoinedPair<L, R>> {
  const left = ordered(objects, 'storage')
  const right = ordered(rows, 'database')
  let a = await left.next()
  let b = await right.next()
  while (a.done !== true || b.done !== true) {
    const order = a.done === true ? 1 : b.done === true ? -1 : compareKeys(a.value.key, b.value.key)
    if (order === 0 && a.done !== true && b.done !== true) {
      yield { key: a.value.key, object: a.value.value, row: b.value.value }
      a = await left.next()
      b = await right.next()
    } else if (order < 0 && a.done !== true) {
      yield { key: a.value.key, object: a.value.value }
      a = await left.next()
    } else if (b.done !== true) {
      yield { key: b.value.key, row: b.value.value }
      b = await right.next()
    }
  }
}

async function * ordered<T> (source: AsyncIterable<Keyed<T>>, side: string): AsyncGenerator<Keyed<T>> {
  let previous: string | undefined
  for await (const item of source) {
    if (previous !== undefined && compareKeys(previous, item.key) >= 0) throw new ListingOrderError(side, previous, item.key)
    previous = item.key
    yield item
  }
}
