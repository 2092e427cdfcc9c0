import type { BlobStore } from './blob-store.js'

/**
 * The walk both kinds of parts debris share (batch result parts, upload parts): list a
 * prefix, skip what is younger than the grace, read each key's name, and let the owner of
 * those objects judge them a page at a time (one or two queries a page, not one a key).
 * A key the owner cannot name or whose owner the database does not know is kept and
 * counted: that is what a wrong database looks like, not debris (reconcile.ts's rule).
 */

export interface PrefixSweepResult {
  scanned: number
  removed: string[]
  /** Objects kept because their name, or what it names, is unknown here. */
  unknown: number
}

export type SweepVerdict = 'remove' | 'keep' | 'unknown'

export interface PrefixSweep<Name> {
  blobStore: BlobStore
  /** The prefix walked; names are read from the key below it. */
  root: string
  /** Objects modified after this (epoch ms) are not looked at. */
  cutoffMs: number
  dryRun?: boolean
  /** What a key below `root` names, or null for a key that is no such object's. */
  parse: (relative: string) => Name | null
  /** One verdict per name of the page, in its order. */
  judge: (page: readonly Name[]) => Promise<SweepVerdict[]>
}

const PAGE = 500

export async function sweepPrefix<Name> (sweep: PrefixSweep<Name>): Promise<PrefixSweepResult> {
  const result: PrefixSweepResult = { scanned: 0, removed: [], unknown: 0 }
  let page: Array<{ key: string, name: Name }> = []

  const judgePage = async (): Promise<void> => {
    if (page.length === 0) return
    const verdicts = await sweep.judge(page.map((p) => p.name))
    for (const [i, { key }] of page.entries()) {
      const verdict = verdicts[i]
      if (verdict === 'unknown') result.unknown++
      else if (verdict === 'remove') {
        if (sweep.dryRun !== true) await sweep.blobStore.delete(key)
        result.removed.push(key)
      }
    }
    page = []
  }

  for await (const object of sweep.blobStore.list(sweep.root)) {
    result.scanned++
    if (object.lastModified.getTime() > sweep.cutoffMs) continue
    const name = sweep.parse(object.key.slice(sweep.root.length))
    if (name === null) {
      result.unknown++
      continue
    }
    page.push({ key: object.key, name })
    if (page.length >= PAGE) await judgePage()
  }
  await judgePage()
  return result
}
