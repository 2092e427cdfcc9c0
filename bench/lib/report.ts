/**
 * Figures, the table printed at the end and the JSON file with every sample. A figure is
 * the median of its runs; its ratio is the median of the per-run ratios, each run paired
 * with the baseline measured right before it, so a slow moment of the machine lowers
 * both sides of one ratio rather than one side of the median.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { median } from './stats.js'

export interface Target {
  /** Which number the target is about. */
  of: 'ratio' | 'value'
  op: '>=' | '<='
  limit: number
}

export interface Figure {
  /** Section: which group of measurements. */
  group: string
  name: string
  unit: string
  /** One value per run (the service's side). */
  values: number[]
  /** What the baseline is, and one value per run, paired with `values`. */
  baseline?: { name: string, values: number[] }
  /** ratio = value / baseline per run by default; null when a ratio means nothing (idle RSS vs growth). */
  ratios?: number[] | null
  target?: Target
  /** Words for the verdict column instead of ok/MISS (an issue's goal reads "met"/"missed"). */
  verdict?: { pass: string, miss: string }
  note?: string
}

export interface Summary {
  value: number
  baseline: number | null
  ratio: number | null
  pass: boolean | null
}

export function summarize (figure: Figure): Summary {
  const value = median(figure.values)
  const baseline = figure.baseline === undefined ? null : median(figure.baseline.values)
  const ratios = figure.ratios === undefined && figure.baseline !== undefined
    ? figure.values.map((v, i) => v / (figure.baseline?.values[i] ?? Number.NaN))
    : figure.ratios ?? null
  const ratio = ratios === null ? null : median(ratios)
  let pass: boolean | null = null
  const target = figure.target
  if (target !== undefined) {
    const subject = target.of === 'ratio' ? ratio : value
    if (subject !== null) pass = target.op === '>=' ? subject >= target.limit : subject <= target.limit
  }
  return { value, baseline, ratio, pass }
}

function num (n: number | null, digits = 1): string {
  if (n === null || Number.isNaN(n)) return '—'
  return n.toFixed(digits)
}

function targetText (target: Target | undefined, unit: string): string {
  if (target === undefined) return ''
  return target.of === 'ratio' ? `${target.op} ${target.limit}×` : `${target.op} ${target.limit} ${unit}`
}

/** A plain-text table: figure, value, baseline, ratio, target and verdict. */
export function formatTable (figures: readonly Figure[]): string {
  const rows: string[][] = [['figure', 'value', 'baseline', 'ratio', 'target', '']]
  let group = ''
  for (const figure of figures) {
    if (figure.group !== group) {
      group = figure.group
      rows.push([`[${group}]`, '', '', '', '', ''])
    }
    const s = summarize(figure)
    const baseline = figure.baseline === undefined ? '' : `${num(s.baseline)} ${figure.unit} ${figure.baseline.name}`
    rows.push([
      `  ${figure.name}`,
      `${num(s.value)} ${figure.unit}`,
      baseline,
      s.ratio === null ? '' : `${num(s.ratio, 2)}×`,
      targetText(figure.target, figure.unit),
      s.pass === null ? '' : s.pass ? (figure.verdict?.pass ?? 'ok') : (figure.verdict?.miss ?? 'MISS')
    ])
  }
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => (row[col] ?? '').length)))
  return rows.map((row) => row.map((cell, col) => cell.padEnd(widths[col]!)).join('  ').trimEnd()).join('\n')
}

export interface Machine {
  cpus: string
  cores: number
  memoryGiB: number
  node: string
  platform: string
  loadAverageAtStart: number[]
}

export function describeMachine (): Machine {
  const cpus = os.cpus()
  return {
    cpus: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: os.loadavg().map((l) => Number(l.toFixed(2)))
  }
}

/** Writes bench/out/results-<timestamp>.json with the options, the machine and every sample. */
export async function writeResults (dir: string, data: { options: unknown, machine: Machine, seconds: number, figures: readonly Figure[] }): Promise<string> {
  await mkdir(dir, { recursive: true })
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const file = path.join(dir, `results-${stamp}.json`)
  const figures = data.figures.map((figure) => ({ ...figure, summary: summarize(figure) }))
  await writeFile(file, JSON.stringify({ ...data, loadAverageAtEnd: os.loadavg(), figures }, null, 2) + '\n')
  return file
}
