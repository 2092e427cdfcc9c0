// The console's only script (CSP: script-src 'self'). It uses the public API alone, with
// the key in the Authorization header. The key lives in `state.key` and nowhere else:
// not in a URL, not in localStorage, sessionStorage or a cookie; reloading forgets it.
// Every string from the API reaches the page through textContent (Trusted Types are
// enforced by the CSP: an innerHTML assignment would throw).

const ACTIVE = new Set(['validating', 'in_progress', 'finalizing', 'cancelling'])
const CANCELLABLE = new Set(['validating', 'in_progress'])
const REFRESH_MS = 1000
/** After a failed refresh while batches run: try again, a little later. */
const RETRY_MS = 5000
const SHOWN_LINE_ERRORS = 20

const state = {
  /** @type {string | null} */
  key: null,
  /** Bumped when the key changes: answers to an older key's requests are dropped. */
  generation: 0,
  /** @type {ReturnType<typeof setTimeout> | null} */
  timer: null,
  refreshing: false,
  refreshAgain: false,
  /** @type {Map<string, string>} batch id → status last shown */
  statuses: new Map()
}

const $ = (id) => {
  const element = document.getElementById(id)
  if (element === null) throw new Error(`#${id} is missing`)
  return element
}

/** An element with attributes and children (strings become text nodes). */
function h (tag, attributes = {}, ...children) {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue
    if (name === 'className') element.className = String(value)
    else if (name.startsWith('on')) element.addEventListener(name.slice(2), value)
    else element.setAttribute(name, value === true ? '' : String(value))
  }
  element.append(...children.filter((child) => child !== null && child !== undefined && child !== false))
  return element
}

class ApiFailure extends Error {
  constructor (status, error) {
    super(error?.message ?? `The service answered HTTP ${status}.`)
    this.status = status
    /** OpenAI's error object `{message, type, param, code}` (plus `errors` for a bad batch file), or null. */
    this.error = error
  }
}

/** A request to the public API with the key; throws ApiFailure on any non-2xx answer. */
async function api (path, init = {}) {
  if (state.key === null) throw new ApiFailure(401, { message: 'Enter an API key first.' })
  const headers = new Headers(init.headers)
  headers.set('authorization', `Bearer ${state.key}`)
  const response = await fetch(path, { ...init, headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' })
  if (!response.ok) {
    let error = null
    try { error = (await response.json()).error ?? null } catch { /* not JSON */ }
    throw new ApiFailure(response.status, error)
  }
  return response
}

const apiJson = async (path, init) => (await api(path, init)).json()

// ------------------------------------------------------------------ formatting

const pad = (n) => String(n).padStart(2, '0')
const clock = (d = new Date()) => `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
function formatTime (seconds) {
  if (typeof seconds !== 'number') return ''
  const d = new Date(seconds * 1000)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(d)}`
}

function formatBytes (bytes) {
  if (bytes < 1024) return `${bytes} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1 }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`
}

/** Whole percent done, rounded down: 100 only once every request has an answer. */
function percentDone (counts) {
  if (counts.total <= 0) return 0
  return Math.min(100, Math.floor(((counts.completed + counts.failed) * 100) / counts.total))
}

const statusLabel = (status) => status.replace('_', ' ')

// ------------------------------------------------------------------ notices

function showNotice (message) {
  const notice = $('notice')
  notice.textContent = message
  notice.hidden = false
}

function clearNotice () {
  const notice = $('notice')
  notice.textContent = ''
  notice.hidden = true
}

/** An answer that says the key is no longer good: forget it and say so. */
function handleFailure (error, what) {
  if (error instanceof ApiFailure && error.status === 401) {
    forgetKey(`The key was refused (${error.error?.code ?? 'HTTP 401'}): enter a valid key.`)
    return
  }
  showNotice(`${what}: ${error instanceof Error ? error.message : String(error)}`)
}

// ------------------------------------------------------------------ batches

function progressBar (batch) {
  const counts = batch.request_counts
  const percent = percentDone(counts)
  const done = counts.completed + counts.failed
  const fill = h('div', { className: 'fill' })
  fill.style.width = `${percent}%`
  const bar = h('div', {
    className: 'bar',
    role: 'progressbar',
    'aria-valuemin': 0,
    'aria-valuemax': 100,
    'aria-valuenow': percent,
    'aria-valuetext': counts.total > 0 ? `${percent} %: ${done} of ${counts.total} requests answered` : 'not planned yet',
    'aria-label': `Progress of ${batch.id}`
  }, fill)
  return { bar, fill, percent }
}

/** The actions a batch offers, as a string that changes only when the buttons must. */
function actionsKey (batch) {
  return [CANCELLABLE.has(batch.status) ? 'cancel' : '', batch.output_file_id ?? '', batch.error_file_id ?? ''].join('|')
}

function batchActions (batch) {
  const cell = h('div', { className: 'actions' })
  if (CANCELLABLE.has(batch.status)) {
    cell.append(h('button', { type: 'button', className: 'danger', 'aria-label': `Cancel ${batch.id}`, onclick: (event) => cancelBatch(batch.id, event.currentTarget) }, 'Cancel'))
  }
  if (batch.output_file_id !== null) {
    const id = batch.output_file_id
    cell.append(h('button', { type: 'button', 'aria-label': `Download the output of ${batch.id}`, onclick: (event) => downloadFile(id, event.currentTarget) }, 'Download output'))
  }
  if (batch.error_file_id !== null) {
    const id = batch.error_file_id
    cell.append(h('button', { type: 'button', className: 'secondary', 'aria-label': `Download the errors of ${batch.id}`, onclick: (event) => downloadFile(id, event.currentTarget) }, 'Download errors'))
  }
  return cell
}

function batchErrors (batch) {
  const errors = batch.errors?.data ?? []
  if (errors.length === 0) return null
  return h('ul', { className: 'line-errors' }, ...errors.slice(0, 5).map((e) =>
    h('li', {}, e.line === null || e.line === undefined ? '' : `Line ${e.line}: `, e.message ?? e.code ?? '')))
}

function newBatchRow (batch) {
  const row = h('tr', { 'data-batch-id': batch.id })
  row.append(
    h('td', {}, h('code', { className: 'id' }, batch.id), h('div', { className: 'sub' })),
    h('td', {}, h('span', { className: 'status' }), h('div', { className: 'sub errors' })),
    h('td', { className: 'progress' }),
    h('td', { className: 'counts' }),
    h('td', { className: 'actions-cell' })
  )
  return row
}

/** Updates a row in place, so a button that has focus keeps it while the numbers move. */
function updateBatchRow (row, batch) {
  const [idCell, statusCell, progressCell, countsCell, actionsCell] = row.children
  idCell.querySelector('.sub').textContent = [batch.endpoint, batch.model, formatTime(batch.created_at)].filter((x) => typeof x === 'string' && x !== '').join(' · ')

  const status = statusCell.querySelector('.status')
  status.textContent = statusLabel(batch.status)
  status.className = `status status-${batch.status}`
  row.dataset.status = batch.status
  statusCell.querySelector('.errors').replaceChildren(...[batchErrors(batch)].filter((x) => x !== null))

  const { bar, percent } = progressBar(batch)
  const old = progressCell.querySelector('.bar')
  if (old === null) {
    progressCell.append(bar, h('span', { className: 'percent', 'aria-hidden': 'true' }))
  } else {
    for (const name of ['aria-valuenow', 'aria-valuetext']) old.setAttribute(name, bar.getAttribute(name))
    old.querySelector('.fill').style.width = `${percent}%`
  }
  progressCell.querySelector('.bar').dataset.state = batch.status
  progressCell.querySelector('.percent').textContent = `${percent} %`

  const c = batch.request_counts
  countsCell.replaceChildren(
    h('span', { className: 'count-ok' }, `${c.completed} completed`), ' · ',
    h('span', { className: c.failed > 0 ? 'count-failed' : '' }, `${c.failed} failed`), ' · ',
    `${c.total} total`
  )

  const key = actionsKey(batch)
  if (row.dataset.actions !== key) {
    row.dataset.actions = key
    actionsCell.replaceChildren(batchActions(batch))
  }
}

function renderBatches (batches) {
  const tbody = $('batches').querySelector('tbody')
  const rows = new Map([...tbody.children].map((row) => [row.dataset.batchId, row]))
  batches.forEach((batch, index) => {
    let row = rows.get(batch.id)
    if (row === undefined) row = newBatchRow(batch)
    rows.delete(batch.id)
    updateBatchRow(row, batch)
    // Moved only when out of place: moving a row would take the focus off its buttons.
    if (tbody.children[index] !== row) tbody.insertBefore(row, tbody.children[index] ?? null)
  })
  for (const gone of rows.values()) gone.remove()
  $('batches').hidden = batches.length === 0
  $('no-batches').hidden = batches.length > 0
}

/** Reads the batches (and the files, when a batch changed status: new output files). */
async function refresh () {
  const generation = state.generation
  const page = await apiJson('/v1/batches?limit=50')
  if (generation !== state.generation) return false
  const changed = page.data.some((b) => state.statuses.get(b.id) !== b.status)
  state.statuses = new Map(page.data.map((b) => [b.id, b.status]))
  renderBatches(page.data)
  if (changed) await refreshFiles()
  const active = page.data.filter((b) => ACTIVE.has(b.status)).length
  $('batches-status').textContent = active > 0
    ? `${active} active · refreshing every second · updated ${clock()}`
    : `Updated ${clock()}`
  return active > 0
}

/** Refreshes now, then every second while a batch is active; one refresh at a time. */
async function kick () {
  if (state.refreshing) { state.refreshAgain = true; return }
  if (state.timer !== null) { clearTimeout(state.timer); state.timer = null }
  if (state.key === null) return
  state.refreshing = true
  let next = null
  try {
    if (await refresh()) next = REFRESH_MS
  } catch (error) {
    handleFailure(error, 'Could not refresh the batches')
    next = RETRY_MS
  } finally {
    state.refreshing = false
  }
  if (state.refreshAgain) { state.refreshAgain = false; return kick() }
  if (next !== null && state.key !== null) state.timer = setTimeout(kick, next)
}

async function cancelBatch (id, button) {
  button.disabled = true
  try {
    const batch = await apiJson(`/v1/batches/${encodeURIComponent(id)}/cancel`, { method: 'POST' })
    clearNotice()
    $('batches-status').textContent = `${id}: ${statusLabel(batch.status)}`
  } catch (error) {
    button.disabled = false
    handleFailure(error, `Could not cancel ${id}`)
  }
  await kick()
}

// ------------------------------------------------------------------ files

/** The filename from Content-Disposition (RFC 6266: filename* first), or null. */
function filenameFrom (header) {
  if (header === null) return null
  const extended = /filename\*=UTF-8''([^;]+)/i.exec(header)
  if (extended !== null) {
    try { return decodeURIComponent(extended[1]) } catch { /* fall back to the quoted name */ }
  }
  const quoted = /filename="([^"]*)"/i.exec(header)
  return quoted === null ? null : quoted[1]
}

/**
 * Fetches the content with the key in the header and hands it to the browser as a Blob
 * URL: a plain link would need the key in its URL. The whole file is held in memory once.
 */
async function downloadFile (id, button) {
  if (button !== undefined) button.disabled = true
  try {
    const response = await api(`/v1/files/${encodeURIComponent(id)}/content`)
    const name = filenameFrom(response.headers.get('content-disposition')) ?? `${id}.jsonl`
    const url = URL.createObjectURL(await response.blob())
    const link = h('a', { href: url, download: name, hidden: true })
    document.body.append(link)
    link.click()
    link.remove()
    // Revoked later: the download reads the Blob after the click returns.
    setTimeout(() => { URL.revokeObjectURL(url) }, 60_000)
  } catch (error) {
    handleFailure(error, `Could not download ${id}`)
  } finally {
    if (button !== undefined) button.disabled = false
  }
}

function endpoint () {
  const value = /** @type {HTMLInputElement} */ ($('endpoint')).value.trim()
  return value === '' ? '/v1/chat/completions' : value
}

async function createBatch (fileId, button) {
  const result = $('create-result')
  if (button !== undefined) button.disabled = true
  result.replaceChildren(`Creating a batch from ${fileId}…`)
  result.className = 'result'
  try {
    const batch = await apiJson('/v1/batches', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input_file_id: fileId, endpoint: endpoint(), completion_window: '24h' })
    })
    result.replaceChildren('Created ', h('code', { 'data-batch-id': batch.id }, batch.id), ` from ${fileId}: see Batches above.`)
    result.className = 'result ok'
    await kick()
  } catch (error) {
    if (error instanceof ApiFailure && error.status === 401) return handleFailure(error, 'Could not create the batch')
    result.replaceChildren(`Could not create a batch from ${fileId}: ${error.message}`)
    result.className = 'result bad'
  } finally {
    if (button !== undefined) button.disabled = false
  }
}

function fileRow (file) {
  const actions = h('div', { className: 'actions' },
    h('button', { type: 'button', className: 'secondary', 'aria-label': `Download ${file.filename}`, onclick: (event) => downloadFile(file.id, event.currentTarget) }, 'Download'))
  if (file.purpose === 'batch') {
    actions.prepend(h('button', { type: 'button', 'aria-label': `Create a batch from ${file.filename}`, onclick: (event) => createBatch(file.id, event.currentTarget) }, 'Create batch'))
  }
  return h('tr', { 'data-file-id': file.id },
    h('td', { className: 'nowrap' }, h('code', { className: 'id' }, file.id)),
    h('td', { className: 'name' }, file.filename),
    h('td', { className: 'nowrap' }, file.purpose),
    h('td', { className: 'num nowrap' }, formatBytes(file.bytes)),
    h('td', { className: 'nowrap' }, formatTime(file.created_at)),
    h('td', {}, actions))
}

async function refreshFiles () {
  const generation = state.generation
  const page = await apiJson('/v1/files?limit=100&order=desc')
  if (generation !== state.generation) return
  $('files').querySelector('tbody').replaceChildren(...page.data.map(fileRow))
  $('files').hidden = page.data.length === 0
  $('no-files').hidden = page.data.length > 0
}

const faultyLines = (error) => typeof error.error_count === 'number' ? error.error_count : (Array.isArray(error.errors) ? error.errors.length : 0)

/** The first faulty lines of a refused batch file, each with its line number. */
function lineErrorList (error) {
  const errors = Array.isArray(error.errors) ? error.errors : []
  const total = faultyLines(error)
  // Each message starts "line N: " (it reads alone in an API answer); the list names the line itself.
  const text = (e) => String(e.message ?? '').replace(/^line \d+: /i, '')
  const list = h('ol', { className: 'line-errors' }, ...errors.slice(0, SHOWN_LINE_ERRORS).map((e) =>
    h('li', { 'data-line': e.line ?? '' }, h('strong', {}, e.line === null || e.line === undefined ? 'File' : `Line ${e.line}`), `: ${text(e)} `, h('code', {}, e.code))))
  const more = total > Math.min(errors.length, SHOWN_LINE_ERRORS)
    ? h('p', { className: 'hint' }, `${total} faulty lines in all; the first ${Math.min(errors.length, SHOWN_LINE_ERRORS)} are shown.`)
    : null
  return [list, more]
}

async function upload (event) {
  event.preventDefault()
  const input = /** @type {HTMLInputElement} */ ($('upload-file'))
  const purpose = /** @type {HTMLSelectElement} */ ($('upload-purpose')).value
  const result = $('upload-result')
  const file = input.files?.[0]
  if (file === undefined) return
  const button = event.submitter ?? null
  if (button !== null) button.disabled = true
  result.className = 'result'
  result.replaceChildren(`Uploading ${file.name}…`)
  // purpose first: the service streams the file and may check it as it arrives.
  const form = new FormData()
  form.append('purpose', purpose)
  form.append('file', file, file.name)
  try {
    const stored = await apiJson('/v1/files', { method: 'POST', body: form })
    const parts = ['Uploaded ', h('strong', {}, stored.filename), ' as ', h('code', { 'data-file-id': stored.id }, stored.id), ` (${formatBytes(stored.bytes)}).`]
    if (stored.purpose === 'batch') {
      parts.push(' ', h('button', { type: 'button', onclick: (e) => createBatch(stored.id, e.currentTarget) }, 'Create batch from it'))
    }
    const warnings = Array.isArray(stored.warnings) && stored.warnings.length > 0
      ? h('ul', { className: 'line-errors' }, ...stored.warnings.slice(0, SHOWN_LINE_ERRORS).map((w) => h('li', {}, w.line === null || w.line === undefined ? '' : `Line ${w.line}: `, `${w.message} (warning)`)))
      : null
    result.replaceChildren(h('p', {}, ...parts), ...(warnings === null ? [] : [warnings]))
    result.className = 'result ok'
    input.value = ''
    await refreshFiles()
  } catch (error) {
    if (error instanceof ApiFailure && error.status === 401) {
      handleFailure(error, 'Could not upload')
    } else {
      const badFile = error instanceof ApiFailure && error.error?.code === 'invalid_batch_file'
      // The service's message names every faulty line already; the list below does, one a line.
      const what = badFile ? `${faultyLines(error.error)} faulty ${faultyLines(error.error) === 1 ? 'line' : 'lines'}, nothing was stored.` : error.message
      const heading = h('p', {}, `Refused (${error.error?.code ?? `HTTP ${error.status ?? '?'}`}): ${what}`)
      const lines = badFile ? lineErrorList(error.error) : []
      result.replaceChildren(heading, ...lines.filter((x) => x !== null))
      result.className = 'result bad'
    }
  } finally {
    if (button !== null) button.disabled = false
  }
}

// ------------------------------------------------------------------ key

function forgetKey (message) {
  state.key = null
  state.generation += 1
  state.statuses = new Map()
  if (state.timer !== null) { clearTimeout(state.timer); state.timer = null }
  $('workspace').hidden = true
  $('key-form').hidden = false
  $('key-in-use').hidden = true
  $('batches').querySelector('tbody').replaceChildren()
  $('files').querySelector('tbody').replaceChildren()
  for (const id of ['upload-result', 'create-result']) $(id).replaceChildren()
  clearNotice()
  $('key-status').textContent = message
  $('api-key').focus()
}

async function useKey (event) {
  event.preventDefault()
  const input = /** @type {HTMLInputElement} */ ($('api-key'))
  const key = input.value.trim()
  if (key === '') return
  // The field is emptied: the key is not left in the DOM for anything that reads it later.
  input.value = ''
  state.key = key
  state.generation += 1
  state.statuses = new Map()
  $('key-status').textContent = 'Checking the key…'
  try {
    await refreshFiles()
  } catch (error) {
    if (error instanceof ApiFailure && error.status === 401) {
      forgetKey(`The key was refused (${error.error?.code ?? 'HTTP 401'}): check it and try again.`)
    } else {
      state.key = null
      $('key-status').textContent = `Could not reach the service: ${error.message}`
    }
    return
  }
  $('key-status').textContent = ''
  $('key-form').hidden = true
  $('key-in-use').hidden = false
  $('workspace').hidden = false
  await kick()
}

$('key-form').addEventListener('submit', useKey)
$('forget-key').addEventListener('click', () => { forgetKey('Key forgotten.') })
$('upload-form').addEventListener('submit', upload)
$('refresh').addEventListener('click', () => { void kick(); void refreshFiles().catch((error) => { handleFailure(error, 'Could not list the files') }) })
