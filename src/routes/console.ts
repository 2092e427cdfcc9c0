import { readFile } from 'node:fs/promises'
import type { FastifyInstance } from 'fastify'

/**
 * The page's policy: its own script and stylesheet only, requests to this origin only (the
 * public API), never framed, never a form submission (the key input has no name, and should
 * the script not run, a form must not put anything in a URL), no DOM sinks for strings.
 */
export const CONSOLE_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'"
].join('; ')

const ASSETS = [
  { url: '/console', file: 'console.html', type: 'text/html; charset=utf-8' },
  { url: '/console/console.js', file: 'console.js', type: 'text/javascript; charset=utf-8' },
  { url: '/console/console.css', file: 'console.css', type: 'text/css; charset=utf-8' },
  { url: '/console/favicon.svg', file: 'favicon.svg', type: 'image/svg+xml' }
] as const

/** public/ sits beside src/; this module runs from src/routes/ and from dist/src/routes/. */
async function readAsset (file: string): Promise<Buffer> {
  let lastError: unknown
  for (const relative of ['../../public/', '../../../public/']) {
    try {
      return await readFile(new URL(relative + file, import.meta.url))
    } catch (error) {
      lastError = error
    }
  }
  throw new Error(`public/${file} not found beside src/`, { cause: lastError })
}

/**
 * `GET /console`: a static page in which a person enters an API key and watches the
 * project's batches and files. It talks to the public API only, with the key in the
 * Authorization header, so loading the page needs no key and the page adds no route
 * that bypasses auth. Assets are read once at start: a few kilobytes, served from memory.
 */
export default async function consoleRoutes (app: FastifyInstance): Promise<void> {
  for (const asset of ASSETS) {
    const body = await readAsset(asset.file)
    app.get(asset.url, { schema: { hide: true } }, async (_request, reply) => {
      return reply
        .header('content-type', asset.type)
        .header('content-security-policy', CONSOLE_CONTENT_SECURITY_POLICY)
        // Same release, same bytes; no-cache still revalidates, so a new release is seen at once.
        .header('cache-control', 'no-cache')
        .send(body)
    })
  }
}
