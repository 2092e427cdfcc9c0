import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

/**
 * A TCP proxy put between the service and a real server (S3, PostgreSQL), so a test can
 * break the network the way production breaks it: the server crashing (connections
 * reset), staying down (connections refused), stalling (bytes held, sockets open) or
 * answering slowly (every byte late). Only the network is faked; both ends are real.
 */
export interface FaultProxy {
  /** `http://127.0.0.1:PORT`, to use as the endpoint instead of the target's. */
  url: string
  port: number
  /** Resets every open connection, both sides, as a crashed server does. */
  cut: () => void
  /** Closes the listener: new connections are refused until `startAccepting`. */
  stopAccepting: () => Promise<void>
  startAccepting: () => Promise<void>
  /** Holds every byte, both ways, on open and new connections alike, until `resume`. */
  pause: () => void
  resume: () => void
  /** Delivers every byte (and every close) `ms` late, in order: a slow, distant server. */
  delay: (ms: number) => void
  /** Bytes delivered from the service to the target so far. */
  bytesUp: () => number
  /** Resolves when no delayed byte or close is still on its way. */
  settled: () => Promise<void>
  close: () => Promise<void>
}

export async function startFaultProxy (target: { host: string, port: number }): Promise<FaultProxy> {
  const sockets = new Set<Socket>()
  let paused = false
  let delayMs = 0
  let up = 0
  let inFlight = 0

  // Writes after the configured delay; the same delay for all keeps the order.
  function later (action: () => void): void {
    if (delayMs === 0) { action(); return }
    inFlight++
    setTimeout(() => { inFlight--; action() }, delayMs)
  }

  function forward (from: Socket, to: Socket, count: boolean): void {
    from.on('data', (chunk: Buffer) => {
      later(() => {
        if (to.destroyed) return
        if (count) up += chunk.length
        // Backpressure, by hand: pipe() would resume a source that pause() stopped.
        if (!to.write(chunk) && !paused) {
          from.pause()
          to.once('drain', () => { if (!paused) from.resume() })
        }
      })
    })
    // A close travels like the bytes before it (late when the network is slow): a clean
    // one as a clean one, after what is still buffered; a reset as an abrupt end.
    from.on('end', () => { later(() => { to.end() }) })
    from.on('close', (hadError) => { later(() => { if (hadError) to.destroy(); else to.end() }) })
    from.on('error', () => {})
  }

  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host)
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('close', () => { sockets.delete(socket) })
      if (paused) socket.pause()
    }
    forward(client, upstream, true)
    forward(upstream, client, false)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('fault proxy has no TCP address')
  const port = address.port

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    cut () {
      for (const socket of sockets) socket.resetAndDestroy()
    },
    async stopAccepting () {
      if (!server.listening) return
      // close() stops listening at once; its callback would wait for open connections.
      server.close()
    },
    async startAccepting () {
      if (server.listening) return
      server.listen(port, '127.0.0.1')
      await once(server, 'listening')
    },
    pause () {
      paused = true
      for (const socket of sockets) socket.pause()
    },
    resume () {
      paused = false
      for (const socket of sockets) socket.resume()
    },
    delay (ms) { delayMs = ms },
    bytesUp: () => up,
    async settled () {
      while (inFlight > 0) await sleep(20)
    },
    async close () {
      for (const socket of sockets) socket.destroy()
      if (server.listening) await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    }
  }
}

/** The target of an `http://host:port` endpoint. */
export function targetOf (endpoint: string): { host: string, port: number } {
  const url = new URL(endpoint)
  return { host: url.hostname, port: Number(url.port) }
}

export interface BlackHole {
  url: string
  close: () => Promise<void>
}

/**
 * An address whose connections never complete: a listener with a backlog of one, in a
 * process that is then stopped, so it never accepts. Once its queue is full the kernel
 * drops further SYNs, as a firewall or a dead host does, and only a client's own
 * connect timeout ends the wait (connection refused would end it at once).
 */
export async function startBlackHole (): Promise<BlackHole> {
  const child = spawn(process.execPath, ['-e', `
    const server = require('node:net').createServer(() => {})
    server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => { console.log(server.address().port) })
  `], { stdio: ['ignore', 'pipe', 'inherit'] })
  const [chunk] = await once(child.stdout, 'data') as [Buffer]
  const port = Number(chunk.toString().trim())
  child.kill('SIGSTOP')
  await sleep(50)
  // Fill the accept queue (backlog 1 admits two) so later SYNs are dropped.
  const fillers: Socket[] = []
  for (let i = 0; i < 4; i++) fillers.push(connect(port, '127.0.0.1').on('error', () => {}))
  await sleep(100)
  return {
    url: `http://127.0.0.1:${port}`,
    async close () {
      for (const socket of fillers) socket.destroy()
      child.kill('SIGKILL')
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit')
    }
  }
}
