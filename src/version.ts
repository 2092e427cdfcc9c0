import { readFileSync } from 'node:fs'

/**
 * The version in package.json. The module runs from source (src/) and from the build
 * (dist/src/), so both depths are tried; the name check skips any other package.json.
 */
export function packageVersion (): string {
  for (const relative of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as { name?: string, version?: string }
      if (pkg.name === 'files-api' && typeof pkg.version === 'string') return pkg.version
    } catch { /* not at this depth */ }
  }
  return '0.0.0'
}
