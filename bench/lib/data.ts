/**
 * Deterministic batch files for the bench. The same seed, shape and size always give the
 * same bytes, so runs on different machines (and before/after a change) read identical
 * input; a seeded PRNG rather than Math.random is what makes that true.
 */
import { once } from 'node:events'
import { createReadStream, createWriteStream } from 'node:fs'
import { rename, stat } from 'node:fs/promises'
import path from 'node:path'

export type Shape = 'short' | 'long'

export interface DataFile {
  path: string
  shape: Shape
  bytes: number
  requests: number
}

const SEED = 0x5eed_f11e

/** mulberry32: tiny, fast and good enough to vary text; not for anything secret. */
function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// Mostly English, with a few non-ASCII words: real prompts carry accents, CJK and emoji,
// and those take V8's slower two-byte string paths in toString and JSON.parse.
const WORDS = ('the of and to in is that for it as was with be by on not he this are or his from at which but have an they ' +
  'you were her all she there would their we him been has when who will more no if out so said what up its about into than ' +
  'them can only other new some could time these two may then do first any my now such like our over man me even most made ' +
  'after also did many before must through back years where much your way well down should because each just those people ' +
  'summarize translate classify extract sentiment invoice customer order shipping refund product review paragraph answer').split(' ')
const RARE_WORDS = ['café', 'naïve', 'Zürich', '東京', 'données', 'привет', '😀', 'São Paulo', 'straße', '한국어']
const SYSTEM_PROMPTS = [
  'You are a helpful assistant. Answer concisely.',
  'You are a support agent for an online shop. Be polite and precise.',
  'Classify the sentiment of the user message as positive, negative or neutral.',
  'Extract the fields name, date and amount from the text and answer in JSON.'
]

function text (random: () => number, chars: number): string {
  const words: string[] = []
  let length = 0
  while (length < chars) {
    const word = random() < 0.01 ? RARE_WORDS[Math.floor(random() * RARE_WORDS.length)]! : WORDS[Math.floor(random() * WORDS.length)]!
    words.push(word)
    length += word.length + 1
  }
  return words.join(' ')
}

/**
 * One chat-completion request line. Short lines are a system and a user message (about
 * 250–650 bytes, mean ~450); long ones a multi-turn conversation of a few KB (mean ~4 KB).
 */
function requestLine (random: () => number, shape: Shape, index: number): string {
  const messages: Array<{ role: string, content: string }> = [
    { role: 'system', content: SYSTEM_PROMPTS[index % SYSTEM_PROMPTS.length]! }
  ]
  if (shape === 'short') {
    messages.push({ role: 'user', content: text(random, 50 + Math.floor(random() * 300)) })
  } else {
    const turns = 2 + Math.floor(random() * 3)
    for (let turn = 0; turn < turns; turn++) {
      messages.push({ role: 'user', content: text(random, 300 + Math.floor(random() * 900)) })
      messages.push({ role: 'assistant', content: text(random, 200 + Math.floor(random() * 600)) })
    }
    messages.push({ role: 'user', content: text(random, 100 + Math.floor(random() * 300)) })
  }
  return JSON.stringify({
    custom_id: `request-${index}`,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', messages, max_tokens: 256 + (index % 4) * 128, temperature: 0.7 }
  })
}

function fileName (shape: Shape, bytes: number): string {
  return `batch-${shape}-${bytes}.jsonl`
}

/**
 * Writes (or reuses, when a file of that exact name and size is already there) a batch
 * file of at least `bytes` bytes: lines are whole, so the file ends at the first line
 * that reaches the size.
 */
export async function batchFile (dir: string, shape: Shape, bytes: number): Promise<DataFile> {
  const file = path.join(dir, fileName(shape, bytes))
  const requests = await countIfPresent(file, bytes)
  if (requests !== null) return { path: file, shape, bytes: (await stat(file)).size, requests }
  const random = prng(SEED ^ (shape === 'short' ? 1 : 2))
  const out = createWriteStream(file, { highWaterMark: 4 * 1024 * 1024 })
  let written = 0
  let index = 0
  let pending: string[] = []
  let pendingBytes = 0
  while (written + pendingBytes < bytes) {
    const line = requestLine(random, shape, index++) + '\n'
    pending.push(line)
    pendingBytes += Buffer.byteLength(line)
    if (pendingBytes >= 1024 * 1024) {
      written += pendingBytes
      if (!out.write(pending.join(''))) await once(out, 'drain')
      pending = []
      pendingBytes = 0
    }
  }
  out.end(pending.join(''))
  await once(out, 'finish')
  return { path: file, shape, bytes: written + pendingBytes, requests: index }
}

/**
 * A batch file of exactly `lines` request lines of `shape` (the batch figure's input:
 * a line count, not a size, is what a batch run is about). Reused like batchFile.
 */
export async function batchFileOfLines (dir: string, shape: Shape, lines: number): Promise<DataFile> {
  const file = path.join(dir, `batch-${shape}-${lines}-lines.jsonl`)
  const size = await stat(file).then((s) => s.size, () => -1)
  if (size > 0) return { path: file, shape, bytes: size, requests: lines }
  const random = prng(SEED ^ (shape === 'short' ? 3 : 4))
  // Written beside and renamed when whole, so an interrupted run leaves nothing to reuse.
  const partial = `${file}.partial`
  const out = createWriteStream(partial, { highWaterMark: 4 * 1024 * 1024 })
  let bytes = 0
  let pending = ''
  for (let index = 0; index < lines; index++) {
    pending += requestLine(random, shape, index) + '\n'
    if (pending.length >= 1024 * 1024 || index === lines - 1) {
      bytes += Buffer.byteLength(pending)
      if (!out.write(pending)) await once(out, 'drain')
      pending = ''
    }
  }
  out.end()
  await once(out, 'finish')
  await rename(partial, file)
  return { path: file, shape, bytes, requests: lines }
}

/** A file from an earlier run with `--data-dir` is reused; its request count is its line count. */
async function countIfPresent (file: string, bytes: number): Promise<number | null> {
  const size = await stat(file).then((s) => s.size, () => -1)
  if (size < bytes) return null
  let lines = 0
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
    for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) lines++
  }
  return lines
}

/** A tiny valid batch file, to fill the metadata store for the list and retrieve figures. */
export function tinyBatch (index: number): Buffer {
  return Buffer.from(requestLine(prng(index), 'short', index) + '\n')
}
