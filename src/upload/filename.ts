/**
 * The client's filename is metadata only (object keys never come from it), but it is
 * echoed in JSON and in Content-Disposition headers: control characters and bidi
 * overrides are removed and the length is capped so it can never break either.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g
export const MAX_FILENAME_LENGTH = 255

export function sanitizeFilename (name: string | undefined): string {
  const cleaned = Array.from((name ?? '').replace(UNSAFE, '').trim()).slice(0, MAX_FILENAME_LENGTH).join('')
  return cleaned === '' ? 'file' : cleaned
}
