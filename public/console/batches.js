// The batches table: a row per batch updated in place, a progress bar of
// (completed + failed) / total, refreshed every second while any batch is active.
import { ApiFailure, apiJson, downloadFile, reportFailure, session } from './api.js'
import { $, clock, formatTime, h, whileBusy } from './dom.js'

const ACTIVE = new Set(['validating', 'in_progress', 'finalizing', 'cancelling'])
const CANCELLABLE = new Set(['validating', 'in_progress'])
const REFRESH_MS = 1000
/** After a failed refresh: try again, a little later. */
const RETRY_MS = 5000

const loop = {
  /** @type {ReturnType<typeof setTimeout> | null} */
  timer: null,
  running: false,
  again: false,
  /** @type {Map<string, string>} batch id → status last shown */
  statuses: new Map()
}

/** Set by console.js: what to do when a batch changed status (files.js must not be imported here: no cycle). */
let onStatusChange = async () => {}

export function setOnStatusChange (handler) { onStatusChange = handler }

/** Whole percent done, rounded down: 100 only once every request has an answer. */
export function percentDone (counts) {
  if (counts.total <= 0) return 0
  return Math.min(100, Math.floor(((counts.completed + counts.failed) * 100) / counts.total))
}

const statusLabel = (status) => status.replace('_', ' ')

/** The actions a batch offers, as a string that changes only when the buttons must. */
function actionsKey (batch) {
  return [CANCELLABLE.has(batch.status) ? 'cancel' : '', batch.output_file_id ?? '', batch.error_file_id ?? ''].join('|')
}

function downloadButton (fileId, label, className, batchId) {
  return h('button', {
    type: 'button',
    className,
    'aria-label': `Download the ${label} of ${batchId}`,
    onclick: (event) => whileBusy(event.currentTarget, () => downloadFile(fileId)).catch((error) => { reportFailure(error, `Could not download ${fileId}`) })
  }, `Download ${label}`)
}

function batchActions (batch) {
  const cell = h('div', { className: 'actions' })
  if (CANCELLABLE.has(batch.status)) {
    cell.append(h('button', { type: 'button', className: 'danger', 'aria-label': `Cancel ${batch.id}`, onclick: (event) => cancelBatch(batch.id, event.currentTarget) }, 'Cancel'))
  }
  if (batch.output_file_id !== null) cell.append(downloadButton(batch.output_file_id, 'output', '', batch.id))
  if (batch.error_file_id !== null) cell.append(downloadButton(batch.error_file_id, 'errors', 'secondary', batch.id))
  return cell
}

function batchErrors (batch) {
  const errors = batch.errors?.data ?? []
  if (errors.length === 0) return null
  return h('ul', { className: 'line-errors' }, ...errors.slice(0, 5).map((e) =>
    h('li', {}, e.line === null || e.line === undefined ? '' : `Line ${e.line}: `, e.message ?? e.code ?? '')))
}

function newBatchRow (batch) {
  const fill = h('div', { className: 'fill' })
  const bar = h('div', { className: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-label': `Progress of ${batch.id}` }, fill)
  return h('tr', { 'data-batch-id': batch.id },
    h('td', {}, h('code', { className: 'id' }, batch.id), h('div', { className: 'sub' })),
    h('td', {}, h('span', { className: 'status' }), h('div', { className: 'sub errors' })),
    h('td', { className: 'progress' }, bar, h('span', { className: 'percent', 'aria-hidden': 'true' })),
    h('td', { className: 'counts' }),
    h('td', { className: 'actions-cell' }))
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

  const c = batch.request_counts
  const percent = percentDone(c)
  const bar = progressCell.querySelector('.bar')
  bar.setAttribute('aria-valuenow', String(percent))
  bar.setAttribute('aria-valuetext', c.total > 0 ? `${percent} %: ${c.completed + c.failed} of ${c.total} requests answered` : 'not planned yet')
  bar.dataset.state = batch.status
  // CSSOM, not a style attribute: allowed by style-src 'self'.
  bar.querySelector('.fill').style.width = `${percent}%`
  progressCell.querySelector('.percent').textContent = `${percent} %`

  // upstream_retries is files-api's extension of the Batch object: a batch that runs on
  // retries (429s, 5xx) shows it here while its counts still look healthy.
  const retries = batch.upstream_retries ?? 0
  countsCell.replaceChildren(
    h('span', {}, `${c.completed} completed`), ' · ',
    h('span', { className: c.failed > 0 ? 'count-failed' : '' }, `${c.failed} failed`), ' · ',
    `${c.total} total`,
    h('span', { className: retries > 0 ? 'retries count-retries' : 'retries', title: 'requests re-sent to the upstream after a 429, a 5xx or a timeout' }, `${retries} upstream ${retries === 1 ? 'retry' : 'retries'}`))

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
    const row = rows.get(batch.id) ?? newBatchRow(batch)
    rows.delete(batch.id)
    updateBatchRow(row, batch)
    // Moved only when out of place: moving a row would take the focus off its buttons.
    if (tbody.children[index] !== row) tbody.insertBefore(row, tbody.children[index] ?? null)
  })
  for (const gone of rows.values()) gone.remove()
  $('batches').hidden = batches.length === 0
  $('no-batches').hidden = batches.length > 0
}

/** Reads the batches once; true while one is active. */
async function refresh () {
  const generation = session.generation
  const page = await apiJson('/v1/batches?limit=50')
  if (generation !== session.generation) return false
  const changed = page.data.some((b) => loop.statuses.get(b.id) !== b.status)
  loop.statuses = new Map(page.data.map((b) => [b.id, b.status]))
  renderBatches(page.data)
  // A batch that moved on may have written output and error files.
  if (changed) await onStatusChange()
  const active = page.data.filter((b) => ACTIVE.has(b.status)).length
  $('batches-status').textContent = active > 0 ? `${active} active · refreshing every second · updated ${clock()}` : `Updated ${clock()}`
  return active > 0
}

/** Refreshes now, then every second while a batch is active; one refresh at a time. */
export async function kick () {
  if (loop.running) { loop.again = true; return }
  if (loop.timer !== null) { clearTimeout(loop.timer); loop.timer = null }
  if (session.key === null) return
  loop.running = true
  let next = null
  try {
    if (await refresh()) next = REFRESH_MS
  } catch (error) {
    // A refused key is for the key's owner to fix; anything else may pass: said here, retried.
    if (error instanceof ApiFailure && error.status === 401) reportFailure(error, 'Could not refresh the batches')
    else $('batches-status').textContent = `Could not refresh (${error.message}); trying again in ${RETRY_MS / 1000} s`
    next = RETRY_MS
  } finally {
    loop.running = false
  }
  if (loop.again) { loop.again = false; return kick() }
  if (next !== null && session.key !== null) loop.timer = setTimeout(kick, next)
}

/** Stops refreshing and empties the table (the key was forgotten). */
export function resetBatches () {
  if (loop.timer !== null) { clearTimeout(loop.timer); loop.timer = null }
  loop.statuses = new Map()
  $('batches').querySelector('tbody').replaceChildren()
}

async function cancelBatch (id, button) {
  try {
    const batch = await whileBusy(button, () => apiJson(`/v1/batches/${encodeURIComponent(id)}/cancel`, { method: 'POST' }))
    $('batches-status').textContent = `${id}: ${statusLabel(batch.status)}`
  } catch (error) {
    reportFailure(error, `Could not cancel ${id}`)
  }
  await kick()
}
