import { readdir, readFile, stat } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

// GitHub's heading anchors: lower case, punctuation other than `-` and `_` dropped, spaces to `-`.
function anchor(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-')
}

function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>()
  let fenced = false
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced
    const heading = /^#{1,6} (.+)$/.exec(line)
    if (!fenced && heading?.[1] !== undefined) anchors.add(anchor(heading[1]))
  }
  return anchors
}

// Inline links `[text](target)` outside code fences and code spans; external ones are skipped.
function linksOf(markdown: string): string[] {
  const links: string[] = []
  let fenced = false
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced
    if (fenced) continue
    for (const match of line.replace(/`[^`]*`/g, '').matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = match[1] ?? ''
      if (!/^[a-z][a-z0-9+.-]*:/i.test(target)) links.push(target)
    }
  }
  return links
}

t.test('every relative link in README.md and docs/*.md points at an existing file and heading', async (t) => {
  const pages = ['README.md', ...(await readdir(join(ROOT, 'docs'))).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)]
  t.ok(pages.length > 1, 'the docs pages are found')
  for (const page of pages) {
    const text = await readFile(join(ROOT, page), 'utf8')
    // An unclosed fence would hide every link after it from this check (and garble the page).
    t.equal(text.split('\n').filter((line) => line.startsWith('```')).length % 2, 0, `${page}: every code fence is closed`)
    for (const link of linksOf(text)) {
      const [path = '', fragment] = link.split('#')
      const target = path === '' ? join(ROOT, page) : join(ROOT, dirname(page), path)
      const exists = await stat(target).then(() => true, () => false)
      t.ok(exists, `${page}: ${link} names an existing file (${relative(ROOT, target)})`)
      if (exists && fragment !== undefined && target.endsWith('.md')) {
        t.ok(anchorsOf(await readFile(target, 'utf8')).has(fragment), `${page}: ${link} names a heading of ${relative(ROOT, target)}`)
      }
    }
  }
})
