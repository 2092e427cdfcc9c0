import { readdir, readFile } from 'node:fs/promises'
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'

/**
 * The page's policy: its own scripts and stylesheet only, requests to this origin only (the
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

/** The kinds of file served from public/console/; anything else there is not. */
const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml'
}

/** public/console/ sits beside src/; this module runs from src/routes/ and from dist/src/routes/. */
async function assetFolder (): Promise<string> {
  for (const relative of ['../../public/console/', '../../../public/console/']) {
    const folder = fileURLToPath(new URL(relative, import.meta.url))
    try {
      await readdir(folder)
      return folder
    } catch { /* not at this depth */ }
  }
  throw new Error('public/console/ not found beside src/')
}

/**
 * `GET /console`: a static page in which a person enters an API key and watches the
 * project's batches and files. It talks to the public API only, with the key in the
 * Authorization header, so loading the page needs no key and the page adds no route
 * that bypasses auth. Assets are read once at start: a few kilobytes, served from memory.
 */
export default async function consoleRoutes (app: FastifyInstance): Promise<void> {
  const folder = await assetFolder()
  for (const name of (await readdir(folder)).sort()) {
    const type = TYPES[extname(name)]
    if (type === undefined) continue
    const body = await readFile(folder + name)
    const url = name === 'index.html' ? '/console' : `/console/${name}`
    app.get(url, { schema: { hide: true } }, async (_request, reply) => reply
      .header('content-type', type)
      .header('content-security-policy', CONSOLE_CONTENT_SECURITY_POLICY)
      // Revalidated on every load, so a new release's page is seen at once.
      .header('cache-control', 'no-cache')
      .send(body))
  }
}
