import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { startLoopLag } from '../../src/batches/loop-lag.js'

function blockLoop (ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until) { /* busy */ }
}

t.test('the loop\'s own lateness: seen during and right after a long task, gone once the loop is idle', async (t) => {
  const lag = startLoopLag()
  t.teardown(() => { lag.stop() })
  await sleep(150)
  t.ok(lag.lagMs() < 100, `idle: ${lag.lagMs().toFixed(1)} ms`)
  blockLoop(200)
  // Still inside the long task: the tick that was due is overdue by about its length.
  t.ok(lag.lagMs() >= 180, `within the task: ${lag.lagMs().toFixed(1)} ms`)
  // The next turn: the late tick has fired and is remembered for the answers read after it.
  await new Promise((resolve) => setImmediate(resolve))
  await sleep(15)
  t.ok(lag.lagMs() >= 180, `just after it: ${lag.lagMs().toFixed(1)} ms`)
  await sleep(300)
  t.ok(lag.lagMs() < 100, `forgotten once the loop is idle again: ${lag.lagMs().toFixed(1)} ms`)
})
