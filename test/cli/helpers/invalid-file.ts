import type { BatchError } from '../../../schemas/batch-error.js'

/** A batch line as the CLI tests write it; `patch` overrides top-level fields. */
export function line (id: string, patch: Record<string, unknown> = {}, model = 'batch-test-model'): string {
  return JSON.stringify({
    custom_id: id,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model, messages: [{ role: 'user', content: `hello ${id}` }] },
    ...patch
  })
}

// Four faults: a duplicate custom_id, a cut JSON line, a blank line in the middle, a GET.
export const INVALID = [line('1'), line('1'), '{"custom_id":"3","method":"POST","url":', '', line('5', { method: 'GET' }), line('6')].join('\n') + '\n'
export const INVALID_ERRORS: BatchError[] = [
  { code: 'duplicate_custom_id', message: 'line 2: custom_id "1" already used on line 1; custom_id must be unique within the file.', param: 'custom_id', line: 2 },
  { code: 'invalid_json_line', message: 'line 3: is not valid JSON (Unexpected end of JSON input); write each request as one complete JSON object on a single line.', param: null, line: 3 },
  { code: 'empty_line', message: 'line 4: is empty; remove blank lines between requests.', param: null, line: 4 },
  { code: 'invalid_method', message: 'line 5: method must be "POST", got "GET".', param: 'method', line: 5 }
]
