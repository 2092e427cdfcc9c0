import t from 'tap'
import { ProgressLine } from '../../src/cli/progress.js'

const MiB = 1024 * 1024

t.test('updates are throttled to the interval, and the line is padded and cleared', async (t) => {
  let now = 1000
  let written = ''
  const progress = new ProgressLine({ write: (text: string) => { written += text } }, 100 * MiB, { intervalMs: 250, now: () => now })
  const chunk = Buffer.from('{}\n{}\n')

  progress.chunk(chunk, 10 * MiB, 0)
  now += 100
  progress.chunk(chunk, 20 * MiB, 0)
  now += 149
  progress.chunk(chunk, 30 * MiB, 1)
  now += 1
  progress.chunk(chunk, 40 * MiB, 2)
  progress.done()

  const first = 'validating: 10% (10.0 of 100.0 MiB), 2 lines, 0 errors'
  const second = 'validating: 40% (40.0 of 100.0 MiB), 8 lines, 2 errors'
  t.equal(written, `\r${first}\r${second}\r${' '.repeat(first.length)}\r`, 'the 100 ms and 249 ms updates are skipped; lines are still counted')
})

t.test('a shorter text is padded over the longer one before it', async (t) => {
  let written = ''
  const progress = new ProgressLine({ write: (text: string) => { written += text } }, 200, { intervalMs: 0 })
  progress.chunk(Buffer.from('\n'.repeat(10)), 100, 120)
  progress.chunk(Buffer.alloc(0), 200, 3)
  const first = 'validating: 50% (0.0 of 0.0 MiB), 10 lines, 120 errors'
  const second = 'validating: 100% (0.0 of 0.0 MiB), 10 lines, 3 errors'
  t.equal(written, `\r${first}\r${second} `, 'one space covers the last character of the longer text')
})

t.test('done() writes nothing when nothing was shown', async (t) => {
  let written = ''
  new ProgressLine({ write: (text: string) => { written += text } }, 1, { intervalMs: 0 }).done()
  t.equal(written, '')
})
