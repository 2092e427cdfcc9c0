// The console's entry module (CSP: script-src 'self'): the key, notices, and the wiring of
// the batches and files views. It uses the public API alone, with the key in the
// Authorization header; the key lives in `session.key` only (api.js) and reloading forgets it.
import { ApiFailure, reportFailure, session, setFailureHandler } from './api.js'
import { kick, resetBatches, setOnStatusChange } from './batches.js'
import { $ } from './dom.js'
import { refreshFiles, resetFiles, upload } from './files.js'

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

function forgetKey (message) {
  session.key = null
  session.generation += 1
  resetBatches()
  resetFiles()
  clearNotice()
  $('workspace').hidden = true
  $('key-form').hidden = false
  $('key-in-use').hidden = true
  $('key-status').textContent = message
  $('api-key').focus()
}

/** A refused key is forgotten (whatever asked); any other failure is said in the notice. */
setFailureHandler((error, what) => {
  if (error instanceof ApiFailure && error.status === 401) {
    forgetKey(`The key was refused (${error.error?.code ?? 'HTTP 401'}): enter a valid key.`)
    return
  }
  showNotice(`${what}: ${error instanceof Error ? error.message : String(error)}`)
})

// A batch that moved on may have written its output and error files.
setOnStatusChange(() => refreshFiles().catch((error) => { reportFailure(error, 'Could not list the files') }))

async function useKey (event) {
  event.preventDefault()
  const input = /** @type {HTMLInputElement} */ ($('api-key'))
  const key = input.value.trim()
  if (key === '') return
  // The field is emptied: the key is not left in the DOM for anything that reads it later.
  input.value = ''
  session.key = key
  session.generation += 1
  $('key-status').textContent = 'Checking the key…'
  try {
    await refreshFiles()
  } catch (error) {
    if (error instanceof ApiFailure && error.status === 401) {
      forgetKey(`The key was refused (${error.error?.code ?? 'HTTP 401'}): check it and try again.`)
    } else {
      session.key = null
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
$('refresh').addEventListener('click', () => {
  clearNotice()
  void kick()
  void refreshFiles().catch((error) => { reportFailure(error, 'Could not list the files') })
})
