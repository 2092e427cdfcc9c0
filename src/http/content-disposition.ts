/**
 * `Content-Disposition: attachment` with the filename safely encoded (RFC 6266 §4.3,
 * RFC 8187): a quoted ASCII fallback for old clients, plus `filename*` in UTF-8. No
 * byte of a filename can end the header or inject another one.
 */
export function contentDisposition (filename: string): string {
  const fallback = filename.replace(/[^\x20-\x7e]|["\\%]/g, '_')
  const encoded = encodeURIComponent(filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`
}
