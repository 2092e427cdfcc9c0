// The public API, with the key in the Authorization header. The key lives in `session.key`
// and nowhere else: not in a URL, not in localStorage, sessionStorage or a cookie.
import { h } from './dom.js'

export const session = {
  /** @type {string | null} */
  key: null,
  /** Bumped when the key changes: answers to an older key's requests are dropped. */
  generation: 0
}

export class ApiFailure extends Error {
  constructor (status, error) {
    super(error?.message ?? `The service answered HTTP ${status}.`)
    this.status = status
    /** OpenAI's error object `{message, type, param, code}` (plus `errors` for a bad batch file), or null. */
    this.error = error
  }
}

/** A request to the public API with the key; throws ApiFailure on any non-2xx answer. */
export async function api (path, init = {}) {
  if (session.key === null) throw new ApiFailure(401, { message: 'Enter an API key first.' })
  const headers = new Headers(init.headers)
  headers.set('authorization', `Bearer ${session.key}`)
  const response = await fetch(path, { ...init, headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' })
  if (!response.ok) {
    let error = null
    try { error = (await response.json()).error ?? null } catch { /* not JSON */ }
    throw new ApiFailure(response.status, error)
  }
  return response
}

export const apiJson = async (path, init) => (await api(path, init)).json()

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
 * Fetches a file's content with the key in the header and hands it to the browser as a
 * Blob URL: a plain link would need the key in its URL. The whole file is held in memory once.
 */
export async function downloadFile (id) {
  const response = await api(`/v1/files/${encodeURIComponent(id)}/content`)
  const name = filenameFrom(response.headers.get('content-disposition')) ?? `${id}.jsonl`
  const url = URL.createObjectURL(await response.blob())
  const link = h('a', { href: url, download: name, hidden: true })
  document.body.append(link)
  link.click()
  link.remove()
  // Revoked later: the download reads the Blob after the click returns.
  setTimeout(() => { URL.revokeObjectURL(url) }, 60_000)
}

/** How a failed request is reported to the person (console.js sets it: a notice, or the key forgotten on 401). */
let failureHandler = (error, what) => { console.error(what, error) }

export function setFailureHandler (handler) { failureHandler = handler }

export function reportFailure (error, what) { failureHandler(error, what) }
