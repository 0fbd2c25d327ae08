// A lean HTTP/1.1 client for upstream endpoints: a keep-alive connection pool per endpoint that
// writes each request head straight onto a pooled socket and parses the response itself.
// http.request + http.Agent cost about a third of the sidecar's CPU per request (ClientRequest,
// the agent's queueing, the parser's IncomingMessage, headersDistinct, nextTick hops); here a
// connection's listeners are bound once, a request is one string write, and a response whose
// body arrives with its head (the common small answer) is handed over as one Buffer, so the
// forwarder can answer with a single write instead of setting up a stream pipe. Larger or slower
// bodies are streamed through a Readable with backpressure (the socket pauses). Reads skip the
// socket's Readable side too (`onread`): each lands in one shared buffer and is copied out at once.

import http from 'node:http';
import net from 'node:net';
import { Readable, Writable } from 'node:stream';
import { fieldName, INVALID_VALUE, owsSlice, TOKEN } from './field-names.js';
import type { HeaderMap } from './header-map.js';

export interface H1PoolLimits {
  maxSockets: number;
  maxIdle: number;
  idleTimeoutMs: number;
}

export interface H1Head {
  /** The request line and header fields, ending with the blank line. */
  head: string;
  hasBody: boolean;
  /** Chunked framing of the body (no Content-Length). */
  chunked: boolean;
  /** A HEAD request: the response has no body whatever its framing fields say. */
  isHead: boolean;
  /** Flush the head at once although the body has not started (Expect: 100-continue). */
  flushHead: boolean;
  connectTimeoutMs: number;
  /**
   * Idempotent and without a body: if a reused keep-alive connection closes before any byte of
   * the response (the upstream timed it out as the request went out), the request is sent once
   * more on a new connection instead of failing.
   */
  replayable: boolean;
}

export interface H1Response {
  status: number;
  headers: HeaderMap;
  /** The whole body when it was complete in the read that carried the head, without trailers. */
  whole: Buffer | undefined;
  /** Set when `whole` is not. */
  body: Readable | undefined;
  trailers: HeaderMap | undefined;
}

export interface H1Events {
  onContinue(): void;
  onResponse(res: H1Response): void;
  /** `connected`: false while the connection was never established (a connect failure). */
  onFailure(connected: boolean, message: string, responded: boolean): void;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);
// Node's own check for the request targets it writes.
const INVALID_PATH = /[^\u0021-\u00ff]/;
const MAX_CHUNK_LINE = 4096;
/**
 * Where every pooled connection's reads land (net's `onread`): no Readable machinery, no buffer
 * allocated per read. One buffer serves all, as each read is copied out before the next can land.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** How a pool opens a connection: `onread` must be given to the socket as it is made. */
export type ConnectFn = (onread: net.OnReadOpts) => net.Socket;

const enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkEnd,
  Trailers,
  Close,
  Done,
}

export function isValidHeaderValue(v: string): boolean {
  return !INVALID_VALUE.test(v);
}
export function isValidToken(v: string): boolean {
  return TOKEN.test(v);
}
export function isValidPath(p: string): boolean {
  return !INVALID_PATH.test(p);
}

/** Header fields as `name: value` lines, checked as Node's own writers check them. */
export function fieldLines(headers: HeaderMap, skip?: (name: string) => boolean): string {
  let s = '';
  for (const name in headers) {
    if (skip?.(name)) continue;
    if (!isValidToken(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
    const values = headers[name]!;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (!isValidHeaderValue(v)) throw new TypeError(`invalid character in header "${name}"`);
      s += `${name}: ${v}\r\n`;
    }
  }
  return s;
}

class HeadError extends Error {}

/** Parses the CRLF-separated `name: value` lines of s from `from` into a HeaderMap. */
function parseFields(s: string, from: number): HeaderMap {
  const out: HeaderMap = Object.create(null) as HeaderMap;
  let i = from;
  while (i < s.length) {
    let eol = s.indexOf('\r\n', i);
    if (eol < 0) eol = s.length;
    const colon = s.indexOf(':', i);
    if (colon <= i || colon > eol) throw new HeadError(`malformed header line in upstream response`);
    const key = fieldName(s, i, colon);
    if (key === undefined) throw new HeadError(`invalid header name in upstream response`);
    const value = owsSlice(s, colon + 1, eol);
    const prior = out[key];
    if (prior === undefined) out[key] = [value];
    else prior.push(value);
    i = eol + 2;
  }
  return out;
}

/** One request on one pooled connection; also what the forwarder holds to write the body or abort. */
export class H1Exchange {
  conn: H1Conn | undefined;
  over = false;
  responded = false;
  requestDone = false;
  responseDone = false;
  /** Sent on a connection that had carried an earlier exchange (it may have gone stale). */
  reusedConn = false;
  /** Already sent again once after a stale connection. */
  replayed = false;
  private headSent = false;
  private queued: Array<{ data: Buffer; cb: () => void }> | undefined;
  private writable: Writable | undefined;
  private trailersOut: string | undefined;
  private finishing = false;
  // Response state, filled in by the connection's parser.
  status = 0;
  headers: HeaderMap | undefined;
  collected: Buffer[] | undefined;
  stream: Readable | undefined;
  trailers: HeaderMap | undefined;

  constructor(
    readonly pool: H1Pool,
    readonly req: H1Head,
    readonly ev: H1Events,
  ) {}

  /** The request body as a Writable (created only for requests that have one). */
  get body(): Writable {
    this.writable ??= new Writable({
      write: (chunk: Buffer, _enc, cb) => this.writeBody(chunk, cb),
      final: (cb) => {
        this.endBody();
        cb();
      },
    });
    return this.writable;
  }

  finish(trailers?: HeaderMap): void {
    if (this.finishing) return;
    this.finishing = true;
    // Trailers exist only in chunked framing; with a Content-Length they are dropped, as Node does.
    if (trailers && this.req.chunked) {
      try {
        this.trailersOut = fieldLines(trailers);
      } catch {
        this.trailersOut = undefined; // a field Node would refuse to write is dropped, not sent
      }
    }
    if (!this.req.hasBody) return; // the head went out complete on assignment
    if (this.writable) this.writable.end();
    else this.endBody();
  }

  abort(): void {
    if (this.over) return;
    this.over = true;
    if (this.stream && !this.stream.destroyed) this.stream.destroy();
    if (this.conn) this.conn.destroy();
    else this.pool.dequeue(this);
  }

  /** The stale connection is gone: back to the state before assignment, for a new one. */
  resetForReplay(): void {
    this.conn = undefined;
    this.headSent = false;
    this.requestDone = false;
    this.replayed = true;
  }

  /** Called by the pool once a connection (new or idle) is ours. */
  assigned(conn: H1Conn): void {
    this.conn = conn;
    if (!this.req.hasBody || this.req.flushHead) this.sendHead();
    const q = this.queued;
    this.queued = undefined;
    if (q) for (const w of q) this.writeBody(w.data, w.cb);
    if (this.finishing && this.req.hasBody && !this.writable) this.endBody();
  }

  private sendHead(): void {
    if (this.headSent) return;
    this.headSent = true;
    this.conn!.socket.write(this.req.head, 'latin1');
    if (!this.req.hasBody) this.requestDone = true;
  }

  private writeBody(chunk: Buffer, cb: () => void): void {
    if (this.over) return cb();
    const conn = this.conn;
    if (!conn) {
      (this.queued ??= []).push({ data: chunk, cb });
      return;
    }
    if (chunk.length === 0) return cb();
    const s = conn.socket;
    s.cork();
    this.sendHead();
    if (this.req.chunked) {
      s.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      s.write(chunk);
      s.write('\r\n', 'latin1', () => cb());
    } else s.write(chunk, () => cb());
    s.uncork();
  }

  private endBody(): void {
    if (this.over || this.requestDone) return;
    const conn = this.conn;
    if (!conn) return; // assigned() ends it
    const s = conn.socket;
    s.cork();
    this.sendHead();
    if (this.req.chunked) s.write(`0\r\n${this.trailersOut ?? ''}\r\n`, 'latin1');
    s.uncork();
    this.requestDone = true;
    if (this.responseDone) conn.exchangeDone(this);
  }
}

/** One keep-alive connection to an endpoint; its listeners live as long as the socket. */
export class H1Conn {
  readonly socket: net.Socket;
  ex: H1Exchange | undefined;
  connected = false;
  reusable = true;
  idleSince = 0;
  idleLimitMs: number;
  private closed = false;
  private state = State.Head;
  private remaining = 0;
  private pending: Buffer | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private lastError: Error | undefined;
  /** Exchanges this connection has completed. */
  private served = 0;

  constructor(
    readonly pool: H1Pool,
    connectTimeoutMs: number,
  ) {
    this.idleLimitMs = pool.limits.idleTimeoutMs;
    const onread: net.OnReadOpts = {
      buffer: READ_BUFFER,
      // `buf` is READ_BUFFER for a socket; a mux channel hands over its frame's bytes instead.
      callback: (n: number, buf: Uint8Array): boolean => {
        const chunk = Buffer.allocUnsafe(n);
        (buf as Buffer).copy(chunk, 0, 0, n);
        this.onData(chunk);
        return true; // backpressure pauses the socket itself (pause() stops reading)
      },
    };
    this.socket = pool.connectTo
      ? pool.connectTo(onread)
      : net.connect({ host: pool.host, port: pool.port, noDelay: true, onread });
    if (connectTimeoutMs > 0) {
      this.connectTimer = setTimeout(() => {
        const err = Object.assign(new Error(`connect timeout after ${connectTimeoutMs} ms`), {
          code: 'ETIMEDOUT',
        });
        this.socket.destroy(err);
      }, connectTimeoutMs);
    }
    this.socket.once('connect', () => {
      this.connected = true;
      clearTimeout(this.connectTimer);
    });
    this.socket.on('end', () => this.onEnd());
    this.socket.on('error', (err) => {
      this.lastError = err;
    });
    this.socket.on('close', () => this.onClose());
  }

  destroy(): void {
    this.reusable = false;
    this.socket.destroy();
  }

  /** A new exchange on this (idle or just dialled) connection. */
  start(ex: H1Exchange): void {
    this.ex = ex;
    ex.reusedConn = this.served > 0;
    this.state = State.Head;
    this.pending = undefined;
    ex.assigned(this);
  }

  exchangeDone(ex: H1Exchange): void {
    if (this.ex !== ex) return;
    this.ex = undefined;
    this.served++;
    // Backpressure on the last response may have left the socket paused; a pooled connection
    // must flow again, or the next response on it (and the server closing it) is never read.
    this.socket.resume();
    this.pool.release(this);
  }

  private fail(message: string): void {
    const ex = this.ex;
    this.ex = undefined;
    this.destroy();
    if (!ex || ex.over) return;
    // The keep-alive race: the upstream closed this idle connection as the request went out.
    // Not one byte of a response came, so a request that may be repeated is, once, elsewhere.
    const noResponse = !ex.responded && this.state === State.Head && this.pending === undefined;
    if (noResponse && ex.reusedConn && ex.req.replayable && !ex.replayed) {
      ex.resetForReplay();
      this.pool.replay(ex);
      return;
    }
    ex.over = true;
    if (ex.stream && !ex.stream.destroyed) ex.stream.destroy();
    ex.ev.onFailure(this.connected, message, ex.responded);
  }

  private onEnd(): void {
    const ex = this.ex;
    if (ex && this.state === State.Close) {
      this.complete(ex);
      return;
    }
    if (ex) this.fail(this.lastError?.message ?? 'socket hang up');
  }

  private onClose(): void {
    clearTimeout(this.connectTimer);
    if (this.closed) return;
    this.closed = true;
    this.reusable = false;
    if (this.ex) {
      const msg =
        this.lastError?.message ??
        (this.ex.responded ? 'upstream closed the connection mid-response' : 'socket hang up');
      this.fail(msg);
    }
    this.pool.closed(this);
  }

  private onData(chunk: Buffer): void {
    const ex = this.ex;
    if (!ex || ex.over) {
      // Bytes on an idle connection, or after an abort: it cannot carry another request.
      this.destroy();
      return;
    }
    let buf = chunk;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    try {
      this.parse(ex, buf);
    } catch (err) {
      this.fail(
        err instanceof HeadError ? err.message : `invalid upstream response: ${(err as Error).message}`,
      );
      return;
    }
    // A response that did not complete in the read that carried its head is streamed from here.
    if (ex.collected && !ex.over) this.startStream(ex);
  }

  private parse(ex: H1Exchange, buf: Buffer): void {
    let off = 0;
    while (off < buf.length) {
      if (this.ex !== ex || ex.over) {
        // Bytes past the end of the response: the connection is out of step with the upstream.
        this.destroy();
        return;
      }
      switch (this.state) {
        case State.Head: {
          const end = buf.indexOf(CRLFCRLF, off);
          if (end < 0) {
            if (buf.length - off > http.maxHeaderSize)
              throw new HeadError('upstream response head too large');
            this.pending = buf.subarray(off);
            return;
          }
          if (end - off > http.maxHeaderSize) throw new HeadError('upstream response head too large');
          const head = buf.toString('latin1', off, end);
          off = end + 4;
          this.onHead(ex, head);
          break;
        }
        case State.Length: {
          const n = Math.min(this.remaining, buf.length - off);
          this.data(ex, buf.subarray(off, off + n));
          off += n;
          this.remaining -= n;
          if (this.remaining === 0) this.complete(ex);
          break;
        }
        case State.ChunkSize: {
          const eol = buf.indexOf('\r\n', off, 'latin1');
          if (eol < 0) {
            if (buf.length - off > MAX_CHUNK_LINE) throw new HeadError('upstream chunk size line too long');
            this.pending = buf.subarray(off);
            return;
          }
          const line = buf.toString('latin1', off, eol);
          off = eol + 2;
          const semi = line.indexOf(';');
          const hex = (semi < 0 ? line : line.slice(0, semi)).trim();
          if (!/^[0-9a-fA-F]{1,12}$/.test(hex))
            throw new HeadError('invalid chunk size in upstream response');
          const size = parseInt(hex, 16);
          if (size === 0) this.state = State.Trailers;
          else {
            this.remaining = size;
            this.state = State.ChunkData;
          }
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.remaining, buf.length - off);
          this.data(ex, buf.subarray(off, off + n));
          off += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.state = State.ChunkEnd;
            this.remaining = 2;
          }
          break;
        }
        case State.ChunkEnd: {
          // The CRLF after a chunk's data; it may be split across reads.
          while (this.remaining > 0 && off < buf.length) {
            const want = this.remaining === 2 ? 13 : 10;
            if (buf[off] !== want) throw new HeadError('malformed chunk in upstream response');
            off++;
            this.remaining--;
          }
          if (this.remaining === 0) this.state = State.ChunkSize;
          break;
        }
        case State.Trailers: {
          if (buf.length - off < 2) {
            this.pending = buf.subarray(off);
            return;
          }
          if (buf[off] === 13 && buf[off + 1] === 10) {
            off += 2;
            this.complete(ex);
            break;
          }
          const end = buf.indexOf(CRLFCRLF, off);
          if (end < 0) {
            if (buf.length - off > http.maxHeaderSize) throw new HeadError('upstream trailers too large');
            this.pending = buf.subarray(off);
            return;
          }
          ex.trailers = parseFields(buf.toString('latin1', off, end), 0);
          off = end + 4;
          this.complete(ex);
          break;
        }
        case State.Close:
          this.data(ex, off === 0 ? buf : buf.subarray(off));
          return;
        case State.Done:
          this.destroy();
          return;
      }
    }
  }

  private onHead(ex: H1Exchange, head: string): void {
    let eol = head.indexOf('\r\n');
    if (eol < 0) eol = head.length;
    const statusLine = head.slice(0, eol);
    if (
      !statusLine.startsWith('HTTP/1.') ||
      statusLine.length < 12 ||
      statusLine.charCodeAt(8) !== 32 ||
      (statusLine.length > 12 && statusLine.charCodeAt(12) !== 32)
    ) {
      throw new HeadError('invalid status line in upstream response');
    }
    const status = Number(statusLine.slice(9, 12));
    if (!Number.isInteger(status) || status < 100) throw new HeadError('invalid status in upstream response');
    const http10 = statusLine.charCodeAt(7) === 48;
    const headers = parseFields(head, eol + 2);
    if (status < 200) {
      // Interim answers: 100 is relayed; 101 without an Upgrade request is a protocol error;
      // others (102, 103) are dropped, as Node's client does without listeners.
      if (status === 101) throw new HeadError('unexpected 101 from upstream');
      if (status === 100) ex.ev.onContinue();
      return;
    }
    const te = headers['transfer-encoding'];
    if (te !== undefined) {
      // Transfer-Encoding is stripped as hop-by-hop: a coding other than chunked would reach the
      // client undone and undeclared, a corrupt body. Refused instead (502), as Envoy does.
      for (const c of te.join(',').split(',')) {
        const coding = c.trim().toLowerCase();
        if (coding !== 'chunked' && coding !== '')
          throw new HeadError(
            `upstream response uses transfer-coding ${JSON.stringify(coding)} (only chunked is relayed)`,
          );
      }
    }
    ex.status = status;
    ex.headers = headers;
    ex.responded = true;
    ex.collected = [];

    const conn = headers['connection'];
    if (http10 || (conn !== undefined && conn.some((v) => /(?:^|,)\s*close\s*(?:,|$)/i.test(v)))) {
      this.reusable = false;
    }
    const ka = headers['keep-alive']?.[0];
    if (ka !== undefined) {
      const m = /timeout=(\d+)/i.exec(ka);
      if (m) {
        // Node's agent: leave a second of margin before the server's own idle close.
        const hint = Number(m[1]) * 1000 - 1000;
        if (hint <= 0) this.reusable = false;
        else this.idleLimitMs = Math.min(this.pool.limits.idleTimeoutMs, hint);
      }
    }

    if (ex.req.isHead || status === 204 || status === 304) {
      this.complete(ex);
      return;
    }
    const cl = headers['content-length'];
    if (te !== undefined) {
      const codings = te.join(',').split(',');
      const last = codings[codings.length - 1]!.trim().toLowerCase();
      if (cl !== undefined) this.reusable = false; // RFC 9112 §6.3: TE wins, but do not trust the rest
      if (last === 'chunked') this.state = State.ChunkSize;
      else {
        this.state = State.Close;
        this.reusable = false;
      }
      return;
    }
    if (cl !== undefined) {
      if (cl.length !== 1 || !/^\d{1,15}$/.test(cl[0]!))
        throw new HeadError('invalid content-length in upstream response');
      const len = Number(cl[0]);
      if (len === 0) this.complete(ex);
      else {
        this.remaining = len;
        this.state = State.Length;
      }
      return;
    }
    this.state = State.Close;
    this.reusable = false;
  }

  private data(ex: H1Exchange, chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (ex.collected) ex.collected.push(chunk);
    else if (ex.stream && !ex.stream.push(chunk)) this.socket.pause();
  }

  private complete(ex: H1Exchange): void {
    this.state = State.Done;
    ex.responseDone = true;
    const collected = ex.collected;
    if (collected) {
      ex.collected = undefined;
      if (ex.trailers === undefined) {
        const whole =
          collected.length === 0 ? EMPTY : collected.length === 1 ? collected[0]! : Buffer.concat(collected);
        ex.ev.onResponse({
          status: ex.status,
          headers: ex.headers!,
          whole,
          body: undefined,
          trailers: undefined,
        });
      } else {
        const stream = new Readable({ read() {} });
        for (const c of collected) stream.push(c);
        stream.push(null);
        ex.stream = stream;
        ex.ev.onResponse({
          status: ex.status,
          headers: ex.headers!,
          whole: undefined,
          body: stream,
          trailers: ex.trailers,
        });
      }
    } else if (ex.stream) ex.stream.push(null);
    if (this.ex !== ex) return;
    if (ex.requestDone) this.exchangeDone(ex);
    else {
      // Answered before the request finished (e.g. the upstream refused the body): the
      // connection is mid-request and cannot be reused.
      this.ex = undefined;
      this.destroy();
    }
  }

  private startStream(ex: H1Exchange): void {
    const collected = ex.collected!;
    ex.collected = undefined;
    const socket = this.socket;
    const stream = new Readable({
      read() {
        socket.resume();
      },
    });
    ex.stream = stream;
    let flowing = true;
    for (const c of collected) flowing = stream.push(c) && flowing;
    if (!flowing) socket.pause();
    ex.ev.onResponse({
      status: ex.status,
      headers: ex.headers!,
      whole: undefined,
      body: stream,
      get trailers() {
        return ex.trailers;
      },
    });
  }
}

/** The connections to one endpoint: LIFO reuse (the warmest socket), a cap, idle expiry. */
export class H1Pool {
  private readonly idle: H1Conn[] = [];
  private readonly waiting: H1Exchange[] = [];
  private readonly all = new Set<H1Conn>();
  private open = 0;
  private retired = false;
  private dead = false;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    readonly host: string,
    readonly port: number,
    readonly limits: H1PoolLimits,
    /** Opens a connection some other way than plain TCP (mTLS to a sidecar). */
    readonly connectTo?: ConnectFn,
  ) {}

  request(req: H1Head, ev: H1Events): H1Exchange {
    const ex = new H1Exchange(this, req, ev);
    const idle = this.idle;
    while (idle.length > 0) {
      const conn = idle.pop()!;
      if (conn.reusable && !conn.socket.destroyed) {
        conn.start(ex);
        return ex;
      }
      conn.destroy();
    }
    if (this.open >= this.limits.maxSockets) this.waiting.push(ex);
    else this.dial(ex);
    return ex;
  }

  private dial(ex: H1Exchange): void {
    this.open++;
    const conn = new H1Conn(this, ex.req.connectTimeoutMs);
    this.all.add(conn);
    conn.start(ex);
  }

  /** An exchange whose reused connection went stale before it was answered: a fresh one. */
  replay(ex: H1Exchange): void {
    if (this.dead) {
      ex.over = true;
      ex.ev.onFailure(false, 'upstream pool closed', false);
      return;
    }
    // The stale connection still counts until its close event; then closed() dials for it.
    if (this.open >= this.limits.maxSockets) this.waiting.unshift(ex);
    else this.dial(ex);
  }

  dequeue(ex: H1Exchange): void {
    const i = this.waiting.indexOf(ex);
    if (i >= 0) this.waiting.splice(i, 1);
  }

  release(conn: H1Conn): void {
    if (!conn.reusable || conn.socket.destroyed) {
      conn.destroy();
      return;
    }
    // Queued requests go first, even on a retired pool: they were accepted before the swap.
    const next = this.waiting.shift();
    if (next) {
      conn.start(next);
      return;
    }
    if (this.retired || this.idle.length >= this.limits.maxIdle) {
      conn.destroy();
      return;
    }
    conn.idleSince = performance.now();
    this.idle.push(conn);
    if (!this.sweeper) {
      this.sweeper = setInterval(() => this.sweep(), 250);
      this.sweeper.unref();
    }
  }

  closed(conn: H1Conn): void {
    this.open--;
    this.all.delete(conn);
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    if (!this.dead && this.waiting.length > 0 && this.open < this.limits.maxSockets)
      this.dial(this.waiting.shift()!);
  }

  private sweep(): void {
    const now = performance.now();
    for (const conn of [...this.idle]) if (now - conn.idleSince >= conn.idleLimitMs) conn.destroy();
    if (this.idle.length === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** No new requests; idle connections close now, busy ones when their exchange ends. */
  retire(): void {
    this.retired = true;
    for (const conn of [...this.idle]) conn.destroy();
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  destroy(): void {
    this.dead = true;
    this.retire();
    const waiting = this.waiting.splice(0);
    for (const conn of [...this.all]) conn.destroy();
    for (const ex of waiting) {
      ex.over = true;
      ex.ev.onFailure(false, 'upstream pool closed', false);
    }
  }
}
