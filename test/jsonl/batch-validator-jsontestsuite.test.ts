import { isUtf8 } from 'node:buffer'
import { Buffer } from 'node:buffer'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { LineScanner } from '../../src/jsonl/line-scanner.js'
import { assertSameVerdict, options } from './helpers/equivalence.js'

// Equivalence on the JSONTestSuite parsing corpus (test/fixtures/jsontestsuite): every case,
// embedded wherever a batch line can hold it, gets the same full result (valid, errors
// with code, line, param and message, warnings, models) from BatchValidator (the byte
// scanner) and from the JSON.parse-based reference (helpers/reference-validator.ts).

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/jsontestsuite/test_parsing')
const cases: Array<[string, Buffer]> = readdirSync(dir).sort().map((name) => [name, readFileSync(path.join(dir, name))])
// The two large cases of the corpus, generated rather than stored (see the fixture's README).
cases.push(['n_structure_open_array_object.json', Buffer.from('[{"":'.repeat(50000) + '\n')])
cases.push(['n_structure_100000_opening_arrays.json', Buffer.from('['.repeat(100000))])

const b = (s: string): Buffer => Buffer.from(s)
const MSG = '{"role":"user","content":"hi"}'
const VALID = '{"custom_id":"first","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[' + MSG + ']}}'

/** A line with `v` at one place; `at` names the place for the failure message. */
function embeddings (v: Buffer): Array<[string, Buffer]> {
  const chat = (head: string, body: string, tail = ''): Buffer[] => [b(`{${head}"method":"POST","url":"/v1/chat/completions","body":{${body}}${tail}}`)]
  const list: Array<[string, Buffer[]]> = [
    ['the line', [v]],
    ['custom_id', [b('{"custom_id":'), v, b(',"method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[' + MSG + ']}}')]],
    ['method', [b('{"custom_id":"a","method":'), v, b(',"url":"/v1/embeddings","body":{"model":"m","input":"x"}}')]],
    ['url', [b('{"custom_id":"a","method":"POST","url":'), v, b(',"body":{"model":"m","input":"x"}}')]],
    ['body', [b('{"custom_id":"a","method":"POST","url":"/v1/embeddings","body":'), v, b('}')]],
    ['body.model', [b('{"custom_id":"a","method":"POST","url":"/v1/embeddings","body":{"model":'), v, b(',"input":"x"}}')]],
    ['body.stream', [b('{"custom_id":"a","method":"POST","url":"/v1/embeddings","body":{"model":"m","stream":'), v, b(',"input":"x"}}')]],
    ['body.input', [b('{"custom_id":"a","method":"POST","url":"/v1/embeddings","body":{"model":"m","input":'), v, b('}}')]],
    ['body.messages', [...chat('"custom_id":"a",', '"model":"m","messages":'), v, b('}}')]],
    ['a messages entry', [...chat('"custom_id":"a",', '"model":"m","messages":['), v, b(']}}')]],
    ['a second messages entry', [...chat('"custom_id":"a",', '"model":"m","messages":[' + MSG + ','), v, b(']}}')]],
    ['a role', [...chat('"custom_id":"a",', '"model":"m","messages":[{"role":'), v, b('}]}}')]],
    ['another field of a message', [...chat('"custom_id":"a",', '"model":"m","messages":[{"role":"user","content":'), v, b('}]}}')]],
    ['another body field', [...chat('"custom_id":"a",', '"model":"m","messages":[' + MSG + '],"x":'), v, b('}}')]],
    ['another top-level field', [b('{"custom_id":"a","x":'), v, b(',"method":"POST","url":"/v1/embeddings","body":{"model":"m","input":"x"}}')]],
    ['the messages array', [...chat('"custom_id":"a",', '"model":"m","messages":['), v, b(',' + MSG + ']}}')]]
  ]
  const text = v.toString('latin1').trim()
  if (text.startsWith('"') && text.endsWith('"')) {
    // A string case also as a key, where the rules read keys and where they do not.
    list.push(['a top-level key', [b('{'), v, b(':1,"custom_id":"a","method":"POST","url":"/v1/embeddings","body":{"model":"m","input":"x"}}')]])
    list.push(['a body key', [b('{"custom_id":"a","method":"POST","url":"/v1/embeddings","body":{'), v, b(':1,"model":"m","input":"x"}}')]])
    list.push(['a message key', [...chat('"custom_id":"a",', '"model":"m","messages":[{'), v, b(':1,"role":"user"}]}}')]])
    list.push(['a nested key', [...chat('"custom_id":"a",', '"model":"m","messages":[' + MSG + '],"x":{'), v, b(':1}}')]])
  }
  return list.map(([at, parts]) => [at, Buffer.concat(parts)])
}

t.test('every JSONTestSuite case, in every position: the reference verdict', async (t) => {
  let files = 0
  for (const [name, value] of cases) {
    for (const [at, line] of embeddings(value)) {
      // Line 1 valid, so the repeated-url and repeated-model shortcuts are in play; the case twice
      // (duplicate custom_ids); then a valid line again. Raw newlines in a case split it into
      // more lines, the same bytes for both validators.
      const file = Buffer.concat([b(VALID + '\n'), line, b('\n'), line, b('\r\n' + VALID.replace('first', 'last'))])
      try {
        assertSameVerdict(file)
        assertSameVerdict(file, options({ modelPolicy: 'reject', maxRequests: 2, maxReportedErrors: 3 }))
        assertSameVerdict(line)
      } catch (err) {
        t.fail(`${name} as ${at}: ${err instanceof Error ? err.message : String(err)}`)
        return
      }
      files++
    }
  }
  t.ok(files > 316 * 16, `${files} files`)
})

t.test('the scanner decides what it should: every y_ case, and no n_ case', async (t) => {
  // Without this the equivalence could hold because the scanner gave every line to JSON.parse.
  const scanner = new LineScanner(['user'])
  const fellBack: string[] = []
  for (const [name, value] of cases) {
    const line = Buffer.concat([b('{"custom_id":"a","x":'), value, b('}')])
    let parses = isUtf8(line)
    try { JSON.parse(line.toString('utf8')) } catch { parses = false }
    const decided = scanner.scan(line, 0, line.length)
    if (decided && !parses) t.fail(`${name}: scanned as valid, JSON.parse refuses it`)
    if (!decided && parses) fellBack.push(name)
    if (name.startsWith('n_') && decided) t.fail(`${name} decided`)
  }
  // Escaped keys are left to JSON.parse on purpose (a key's decoded text is what counts).
  t.strictSame(fellBack, ['i_object_key_lone_2nd_surrogate.json', 'y_object_escaped_null_in_key.json'])
})
