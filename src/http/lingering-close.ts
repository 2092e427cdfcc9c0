import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { Socket } from 'node:net'

export interface LingerOptions {
  /** Most request bytes read and dropped after the answer; 0 turns lingering off. */
  maxBytes: number
  /** Longest the connection stays open after the answer; 0 turns lingering off. */
  timeoutMs: number
}

/**
 * Lingering close, as nginx does it (ngx_http_core_module `lingering_close`) and RFC 9112
 * §9.6 describes: Node closes a connection after an answer marked `Connection: close` by
 * destroying the socket once the answer is written. When the request's body is still
 * arriving (an upload refused before it was read: no key, quota, rate limit, overload),
 * the kernel answers those bytes with a reset, and a reset that overtakes the answer makes
 * the client see ECONNRESET/EPIPE instead of it (issue 9: 5 of 10 openai SDK uploads).
 *
 * So on such a connection the close is done in stages: half-close (the answer and a FIN go
 * out), then read and drop what the client still sends until its body ends, it closes, or
 * `maxBytes` / `timeoutMs` is reached, and only then destroy the socket. A connection whose
 * request was read in full closes as before.
 */
export function lingerBeforeClose (server: Server, options: LingerOptions): void {
  if (options.maxBytes <= 0 || options.timeoutMs <= 0) return
  // The request each connection answered unread: Node gives destroySoon no request to look at.
  const unread = new WeakMap<Socket, IncomingMessage>()
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    // Before 'finish', where Node would dump the body: a dumped request gets no data events,
    // so its bytes could not be counted, nor its end seen.
    res.once('prefinish', () => {
      if (req.complete) return
      unread.set(req.socket, req)
      drain(req, options.maxBytes)
    })
  })
  server.on('connection', (socket: Socket) => {
    // destroySoon is what Node's HTTP server calls after the last answer on a connection
    // (resOnFinish); replacing it on the instance is the one point that sees every such close.
    socket.destroySoon = function destroySoon (this: Socket): void {
      const req = unread.get(socket)
      if (req === undefined || req.complete || socket.destroyed) {
        Socket.prototype.destroySoon.call(this)
        return
      }
      linger(socket, req, options.timeoutMs)
    }
  })
}

/** Reads and drops the rest of the body; past `maxBytes` the connection is cut. */
function drain (req: IncomingMessage, maxBytes: number): void {
  let drained = 0
  // Whatever still consumed the body (a multipart parser that gave up) is detached: a
  // paused request would stop the socket being read at all.
  req.unpipe()
  req.removeAllListeners('data')
  req.on('data', (chunk: Buffer) => {
    drained += chunk.length
    if (drained > maxBytes) req.socket.destroy()
  })
  req.resume()
}

/** Half-close now; close for good when the body has ended, the client closed, or after `timeoutMs`. */
function linger (socket: Socket, req: IncomingMessage, timeoutMs: number): void {
  socket.end()
  const timer = setTimeout(() => { socket.destroy() }, timeoutMs)
  socket.once('close', () => { clearTimeout(timer) })
  // The whole body has arrived: nothing more is due (the answer said Connection: close).
  // Closed once the answer and the FIN are flushed; a client that never reads them is
  // left to the timer.
  req.once('end', () => {
    if (socket.writableFinished) socket.destroy()
    else socket.once('finish', () => { socket.destroy() })
  })
}

/**
 * `Expect: 100-continue`: Node answers 100 Continue before the app has seen the request,
 * so a client that waits for it (curl, for bodies over 1 MiB) sends the whole body even
 * when the request is then refused. With this handler the 100 goes out only when the app
 * starts reading the body; a refusal made before that (auth, limits, quota) is the answer
 * the client gets instead, and it sends no body at all (RFC 9110 §10.1.1).
 */
export function continueWhenBodyRead (server: Server): void {
  server.on('checkContinue', (req: IncomingMessage, res) => {
    const read = req._read
    // _read is how every consumer (data listener, pipe, async iterator) asks for bytes.
    req._read = function firstRead (this: IncomingMessage, size: number): void {
      req._read = read
      if (!res.headersSent && !res.writableEnded) res.writeContinue()
      read.call(this, size)
    }
    server.emit('request', req, res)
  })
}
