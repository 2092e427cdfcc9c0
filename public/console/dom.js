// DOM and formatting helpers, shared by the console's modules. Strings from the API reach
// the page through text nodes only (the CSP's Trusted Types make innerHTML throw).

export const $ = (id) => {
  const element = document.getElementById(id)
  if (element === null) throw new Error(`#${id} is missing`)
  return element
}

/** An element with attributes and children (strings become text nodes). */
export function h (tag, attributes = {}, ...children) {
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

const pad = (n) => String(n).padStart(2, '0')

export const clock = (d = new Date()) => `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`

export function formatTime (seconds) {
  if (typeof seconds !== 'number') return ''
  const d = new Date(seconds * 1000)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(d)}`
}

export function formatBytes (bytes) {
  if (bytes < 1024) return `${bytes} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1 }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`
}

/** Runs `work` with `button` disabled (no double submit), enabling it again afterwards. */
export async function whileBusy (button, work) {
  if (button instanceof HTMLButtonElement) button.disabled = true
  try {
    return await work()
  } finally {
    if (button instanceof HTMLButtonElement && button.isConnected) button.disabled = false
  }
}
