import t from 'tap'
import { RequestSlots } from '../../src/batches/request-slots.js'

t.test('slots: at most max held, waiters served in order, a released slot passes straight on', async (t) => {
  const slots = new RequestSlots(2)
  t.ok(await slots.acquire())
  t.ok(await slots.acquire())
  const order: number[] = []
  const waiting = [1, 2, 3].map(async (i) => { if (await slots.acquire()) order.push(i) })
  t.equal(slots.waiting, 3)
  slots.release()
  slots.release()
  await new Promise((resolve) => setImmediate(resolve))
  t.same(order, [1, 2])
  t.equal(slots.inUse, 2, 'passed on, never more than two held')
  slots.release()
  await Promise.all(waiting)
  t.same(order, [1, 2, 3])
  slots.release(); slots.release()
  t.equal(slots.inUse, 0)
  slots.release()
  t.equal(slots.inUse, 0, 'an extra release does not go below zero')
})

t.test('slots: an aborted wait leaves the line and holds nothing', async (t) => {
  const slots = new RequestSlots(1)
  await slots.acquire()
  const ac = new AbortController()
  const first = slots.acquire(ac.signal)
  const second = slots.acquire()
  ac.abort()
  t.equal(await first, false)
  slots.release()
  t.equal(await second, true, 'the next in line gets the slot')
  t.equal(slots.inUse, 1)
  t.equal(await slots.acquire(AbortSignal.abort()), false, 'an already aborted signal waits for nothing')
})
