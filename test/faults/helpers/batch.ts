/**
 * One batch line whose content mixes 1- to 4-byte UTF-8 characters, so a cut can fall
 * inside a character.
 */
export function batchLine (i: number, padding = 0): string {
  return JSON.stringify({
    custom_id: `req-${i}`,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'fault-model', messages: [{ role: 'user', content: `héllo ${i} 日本語 🙂 ${'x'.repeat(padding)}` }] }
  })
}

/** A valid batch file of `count` lines, each padded by `padding` bytes. */
export function batchFile (count: number, padding = 0): Buffer {
  return Buffer.from(Array.from({ length: count }, (_, i) => batchLine(i, padding)).join('\n') + '\n')
}

/** A valid batch file of at least `bytes` bytes. */
export function batchFileOf (bytes: number): Buffer {
  const padding = 2000
  return batchFile(Math.ceil(bytes / (batchLine(0, padding).length + 1)), padding)
}
