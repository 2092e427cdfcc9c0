// The files table, the upload form (a refused batch file's faulty lines, with their
// numbers) and "create batch" from an uploaded batch file.
import { ApiFailure, apiJson, downloadFile, reportFailure, session } from './api.js'
import { kick } from './batches.js'
import { $, formatBytes, formatTime, h, whileBusy } from './dom.js'

const SHOWN_LINE_ERRORS = 20

function endpoint () {
  const value = /** @type {HTMLInputElement} */ ($('endpoint')).value.trim()
  return value === '' ? '/v1/chat/completions' : value
}

async function createBatch (fileId, button) {
  const result = $('create-result')
  result.className = 'result'
  result.replaceChildren(`Creating a batch from ${fileId}…`)
  try {
    const batch = await whileBusy(button, () => apiJson('/v1/batches', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input_file_id: fileId, endpoint: endpoint(), completion_window: '24h' })
    }))
    result.replaceChildren('Created ', h('code', { 'data-batch-id': batch.id }, batch.id), ` from ${fileId}: see Batches above.`)
    result.className = 'result ok'
    await kick()
  } catch (error) {
    if (error instanceof ApiFailure && error.status === 401) return reportFailure(error, 'Could not create the batch')
    result.replaceChildren(`Could not create a batch from ${fileId}: ${error.message}`)
    result.className = 'result bad'
  }
}

function download (fileId) {
  return (event) => whileBusy(event.currentTarget, () => downloadFile(fileId)).catch((error) => { reportFailure(error, `Could not download ${fileId}`) })
}

function fileRow (file) {
  const actions = h('div', { className: 'actions' })
  if (file.purpose === 'batch') {
    actions.append(h('button', { type: 'button', 'aria-label': `Create a batch from ${file.filename}`, onclick: (event) => createBatch(file.id, event.currentTarget) }, 'Create batch'))
  }
  actions.append(h('button', { type: 'button', className: 'secondary', 'aria-label': `Download ${file.filename}`, onclick: download(file.id) }, 'Download'))
  return h('tr', { 'data-file-id': file.id },
    h('td', { className: 'nowrap' }, h('code', { className: 'id' }, file.id)),
    h('td', { className: 'name' }, file.filename),
    h('td', { className: 'nowrap' }, file.purpose),
    h('td', { className: 'num nowrap' }, formatBytes(file.bytes)),
    h('td', { className: 'nowrap' }, formatTime(file.created_at)),
    h('td', {}, actions))
}

export async function refreshFiles () {
  const generation = session.generation
  const page = await apiJson('/v1/files?limit=100&order=desc')
  if (generation !== session.generation) return
  $('files').querySelector('tbody').replaceChildren(...page.data.map(fileRow))
  $('files').hidden = page.data.length === 0
  $('no-files').hidden = page.data.length > 0
}

export function resetFiles () {
  $('files').querySelector('tbody').replaceChildren()
  for (const id of ['upload-result', 'create-result']) $(id).replaceChildren()
}

const faultyLines = (error) => typeof error.error_count === 'number' ? error.error_count : (Array.isArray(error.errors) ? error.errors.length : 0)

/** The first faulty lines of a refused batch file, each with its line number. */
function lineErrorList (error) {
  const errors = Array.isArray(error.errors) ? error.errors : []
  const total = faultyLines(error)
  // Each message starts "line N: " (it reads alone in an API answer); the list names the line itself.
  const text = (e) => String(e.message ?? '').replace(/^line \d+: /i, '')
  const shown = errors.slice(0, SHOWN_LINE_ERRORS)
  const list = h('ol', { className: 'line-errors' }, ...shown.map((e) =>
    h('li', { 'data-line': e.line ?? '' }, h('strong', {}, e.line === null || e.line === undefined ? 'File' : `Line ${e.line}`), `: ${text(e)} `, h('code', {}, e.code))))
  const more = total > shown.length ? h('p', { className: 'hint' }, `${total} faulty lines in all; the first ${shown.length} are shown.`) : null
  return [list, more].filter((x) => x !== null)
}

function uploaded (stored) {
  const parts = ['Uploaded ', h('strong', {}, stored.filename), ' as ', h('code', { 'data-file-id': stored.id }, stored.id), ` (${formatBytes(stored.bytes)}).`]
  if (stored.purpose === 'batch') {
    parts.push(' ', h('button', { type: 'button', onclick: (event) => createBatch(stored.id, event.currentTarget) }, 'Create batch from it'))
  }
  const warnings = Array.isArray(stored.warnings) ? stored.warnings.slice(0, SHOWN_LINE_ERRORS) : []
  return [
    h('p', {}, ...parts),
    ...(warnings.length === 0 ? [] : [h('ul', { className: 'line-errors' }, ...warnings.map((w) => h('li', {}, w.line === null || w.line === undefined ? '' : `Line ${w.line}: `, `${w.message} (warning)`)))])
  ]
}

function refused (error) {
  const badFile = error instanceof ApiFailure && error.error?.code === 'invalid_batch_file'
  // The service's message names every faulty line already; the list below does, one a line.
  const what = badFile ? `${faultyLines(error.error)} faulty ${faultyLines(error.error) === 1 ? 'line' : 'lines'}, nothing was stored.` : error.message
  return [h('p', {}, `Refused (${error.error?.code ?? `HTTP ${error.status ?? '?'}`}): ${what}`), ...(badFile ? lineErrorList(error.error) : [])]
}

export async function upload (event) {
  event.preventDefault()
  const input = /** @type {HTMLInputElement} */ ($('upload-file'))
  const purpose = /** @type {HTMLSelectElement} */ ($('upload-purpose')).value
  const result = $('upload-result')
  const file = input.files?.[0]
  if (file === undefined) return
  result.className = 'result'
  result.replaceChildren(`Uploading ${file.name}…`)
  // purpose first: the service streams the file and may check it as it arrives.
  const form = new FormData()
  form.append('purpose', purpose)
  form.append('file', file, file.name)
  try {
    const stored = await whileBusy(event.submitter, () => apiJson('/v1/files', { method: 'POST', body: form }))
    result.replaceChildren(...uploaded(stored))
    result.className = 'result ok'
    input.value = ''
    await refreshFiles()
  } catch (error) {
    if (error instanceof ApiFailure && error.status === 401) return reportFailure(error, 'Could not upload')
    result.replaceChildren(...refused(error))
    result.className = 'result bad'
  }
}
