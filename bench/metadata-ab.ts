/**
 * Two builds of the server side by side, for a change to the metadata-read path: both
 * run at once on their own temp DATA_DIR, and one-second autocannon slices alternate
 * between them (A /health, B /health, A retrieve, B retrieve, …, the order of A and B
 * swapped every round), so a shared machine's slow seconds fall on both alike. Run it
 * twice with the builds swapped: the second server started has been ~5 % faster in
 * A-against-A runs on this machine.
 *
 *   npm run build && cp -r dist /tmp/after   # … and a build of the other commit
 *   node --import tsx bench/metadata-ab.ts A/dist/src/server.js B/dist/src/server.js [rounds]
 *
 * Each build needs node_modules beside it or above it (a git worktree after npm ci, or a
 * copy of dist inside this checkout).
 */
import { cannon, metadataTargets, overSlices, type CannonResult } from './lib/figures-service.js'
import { startServer, type RunningServer } from './lib/server.js'

const [entryA, entryB, roundsArg] = process.argv.slice(2)
if (entryA === undefined || entryB === undefined) throw new Error('usage: metadata-ab.ts A/dist/src/server.js B/dist/src/server.js [rounds]')
const rounds = Number(roundsArg ?? 12)
const CONNECTIONS = 10

const sides = [] as Array<{ name: string, server: RunningServer, retrieve: string, health: CannonResult[], reads: CannonResult[] }>
try {
  for (const [name, entry] of [['A', entryA], ['B', entryB]] as const) {
    const server = await startServer({ driver: 'fs', entry })
    sides.push({ name, server, retrieve: (await metadataTargets(server.url)).targets[0]!.url, health: [], reads: [] })
  }
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? sides : [...sides].reverse()
    for (const side of order) side.health.push(await cannon(`${side.server.url}/health`, 1, CONNECTIONS, false))
    for (const side of order) side.reads.push(await cannon(side.retrieve, 1, CONNECTIONS, true))
  }
  const [a, b] = sides.map((side) => ({ name: side.name, health: overSlices(side.health).rps, retrieve: overSlices(side.reads).rps }))
  for (const side of [a!, b!]) {
    console.log(`${side.name}: /health ${side.health.toFixed(0)} req/s, GET /v1/files/{id} ${side.retrieve.toFixed(0)} req/s, ratio ${(side.retrieve / side.health).toFixed(3)}`)
  }
  console.log(`B / A: retrieve ${(b!.retrieve / a!.retrieve).toFixed(3)}, /health ${(b!.health / a!.health).toFixed(3)}`)
} finally {
  for (const side of sides) await side.server.stop()
}
