// The server side of downstream HTTP/1.1, on the raw socket: each connection reads one request
// at a time with our own parser (downstream-h1-parser.ts) and answers it through the Downstream
// interface. Node's http.Server cost most of the sidecar's added latency (IncomingMessage,
// ServerResponse, header objects, per-socket timers, nextTick hops); as on the upstream side
// (upstream-h1.ts), a connection's listeners are bound once, a response head is one latin1
// string, and a whole response (head and body) is one write.
//
// A connection's life: idle → reading a request (head, then body streamed with backpressure)
// → the response is written; pipelined bytes that arrive meanwhile are held, and read once the
// response is done. A response that ends before its request body is read in full lets the rest
// of the body be read and dropped, as Node does. Timeouts (headers, whole request, keep-alive
// idle) are checked by one sweep per server, not a timer per request.

import http from 'node:http';
import type { Socket } from 'node:net';
import { Readable, Writable } from 'node:stream';
import type { Logger } from '../../log.js';
import {
  parseRequestTarget,
  unsupportedTransferCoding,
  type Downstream,
  type RequestHead,
} from './downstream.js';
import {
  H1RequestError,
  H1RequestParser,
  type H1ParserSink,
  type ParsedRequestHead,
} from './downstream-h1-parser.js';
import { isEmpty, type HeaderMap } from './header-map.js';
import { proxyError, type LocalReply } from './local-reply.js';
import { peerOf } from './mtls.js';
import type { PeerIdentity } from './peer-identity.js';
import { writeRawReply } from './upgrade-tunnel.js';
import { fieldLines, isValidHeaderValue, isValidToken } from './upstream-h1.js';

export interface H1ServerLimits {
  /** Request line and header fields (and, separately, trailers): more is a 431. */
  maxRequestHeadersBytes: number;
  /** From the first byte of a request to the end of its head: 408 after it. */
  headersTimeoutMs: number;
  /** From the first byte of a request to the end of its body: 408 after it (0 = off). */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: number;
}

export interface H1ServerHandlers {
  onRequest(ds: Downstream): void;
  /** The socket is the handler's from here on; `rest` holds the bytes read after the head. */
  onUpgrade(head: RequestHead, socket: Socket, rest: Buffer): void;
}

const EMPTY = Buffer.alloc(0);
/** Pipelined bytes held while a response is under way; beyond this the socket is paused. */
const HOLD_LIMIT = 64 * 1024;
/** After our FIN, how long a client may take to close its side before the socket is destroyed. */
const LINGER_MS = 5_000;
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
const CLOSE_TOKEN = /(?:^|,)[ \t]*close[ \t]*(?:,|$)/i;
const PAUSED_BODY = 1;
const PAUSED_HELD = 2;

const enum Framing {
  /** HEAD, 204, 304: no body whatever the fields say. */
  None,
  Length,
  Chunked,
  /** HTTP/1.0 client and no length: the body ends when the connection does. */
  Close,
}

function now(): number {
  return performance.now();
}

/** The proxy's view of a parsed head: authority and origin-form path, `host` taken out. */
export function toRequestHead(req: ParsedRequestHead): RequestHead {
  const headers = req.headers;
  const target = parseRequestTarget(req.target, headers['host'], req.version);
  delete headers['host'];
  return {
    method: req.method,
    authority: target.authority,
    path: target.path,
    scheme: target.scheme,
    headers,
    invalid: target.invalid,
    unsupported: unsupportedTransferCoding(headers['transfer-encoding']),
  };
}

/** The connections of one listener: limits, the timeout sweep, drain and close. */
export class H1Server {
  private readonly conns = new Set<H1Connection>();
  private sweeper: NodeJS.Timeout | undefined;
  private sweepEveryMs = 0;
  draining = false;

  constructor(
    public limits: H1ServerLimits,
    readonly handlers: H1ServerHandlers,
    readonly logger: Logger,
  ) {}

  connection(socket: Socket): void {
    this.conns.add(new H1Connection(this, socket));
    this.startSweep();
  }

  /** New limits apply to open connections too, from their next request head or sweep. */
  update(limits: H1ServerLimits): void {
    this.limits = limits;
    for (const c of this.conns) c.parser.maxHeadBytes = limits.maxRequestHeadersBytes;
    if (this.sweeper !== undefined && this.sweepEveryMs !== this.sweepInterval()) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
      this.startSweep();
    }
  }

  /** Idle connections close now; busy ones answer their current request with `connection: close`. */
  drain(): void {
    this.draining = true;
    for (const c of this.conns) c.closeIfIdle();
  }

  close(): void {
    this.draining = true;
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const c of this.conns) c.destroy();
  }

  removed(c: H1Connection): void {
    this.conns.delete(c);
  }

  /**
   * A quarter of the shortest timeout, so each fires at most a quarter late; not more often
   * than every 250 ms (each sweep walks every connection), at least every 30 s.
   */
  private sweepInterval(): number {
    const l = this.limits;
    let shortest = Math.min(l.headersTimeoutMs, l.keepAliveTimeoutMs, LINGER_MS);
    if (l.requestTimeoutMs > 0) shortest = Math.min(shortest, l.requestTimeoutMs);
    return Math.min(30_000, Math.max(250, Math.floor(shortest / 4)));
  }

  private startSweep(): void {
    if (this.sweeper !== undefined) return;
    this.sweepEveryMs = this.sweepInterval();
    this.sweeper = setInterval(() => this.sweep(), this.sweepEveryMs);
    this.sweeper.unref();
  }

  private sweep(): void {
    if (this.conns.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
      return;
    }
    const t = now();
    for (const c of this.conns) c.checkTimeouts(t, this.limits);
  }
}

/** One client connection; its listeners live as long as the socket (or until an Upgrade). */
export class H1Connection implements H1ParserSink {
  readonly parser: H1RequestParser;
  readonly remoteAddress: string;
  /** The exchange under way: from its head until its response is written and its body read. */
  ex: H1Downstream | undefined;
  /**
   * Reads not yet parsed: bytes after a request whose response is under way (pipelining), fed
   * one by one once it is done — never joined, so many small reads cost no copying.
   */
  private held: Buffer[] = [];
  private heldLen = 0;
  private feeding = false;
  /** Why the socket is paused: request-body backpressure, too many held bytes (bit set). */
  private pausedFor = 0;
  private closing = false;
  private gone = false;
  private upgradeHead: ParsedRequestHead | undefined;
  // Timestamps (performance.now()) for the sweep; 0 when not running.
  private idleSince: number;
  private headStart = 0;
  private requestStart = 0;
  private closingSince = 0;

  constructor(
    readonly server: H1Server,
    readonly socket: Socket,
  ) {
    this.parser = new H1RequestParser(this, server.limits.maxRequestHeadersBytes);
    this.remoteAddress = socket.remoteAddress ?? '';
    this.idleSince = now();
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
  }

  // ---- socket events

  private readonly onData = (chunk: Buffer): void => {
    if (this.closing || this.gone) return; // closing: read and dropped, so the client's FIN is seen
    this.hold(chunk);
    // Bytes after a request whose response is under way wait their turn.
    if (this.ex !== undefined && this.parser.done) return;
    if (!this.feeding) this.feed();
  };

  private readonly onEnd = (): void => {
    if (this.closing || this.gone) return;
    // A client that half-closes with a request under way is taken to have gone (as Node's
    // server does): the exchange is aborted, and the upstream request with it.
    if (this.between) this.closeGracefully();
    else this.socket.destroy();
  };

  /** Between requests: none under way, none of the next one read. */
  private get between(): boolean {
    return this.ex === undefined && this.heldLen === 0 && (this.parser.idle || this.parser.done);
  }

  private readonly onClose = (): void => {
    if (this.gone) return;
    this.gone = true;
    this.server.removed(this);
    const ex = this.ex;
    this.ex = undefined;
    ex?.abort();
    ex?.dropBody();
  };

  // ---- parser events (called from inside feed())

  onHead(head: ParsedRequestHead): void {
    this.headStart = 0;
    if (head.upgrade) {
      this.upgradeHead = head; // handed over once the parser has stopped, in feed()
      return;
    }
    const ds = new H1Downstream(this, head);
    this.ex = ds;
    if (ds.requestComplete) this.requestStart = 0;
    try {
      this.server.handlers.onRequest(ds);
    } catch (err) {
      this.server.logger.error({ err: (err as Error).stack }, 'request failed inside the proxy');
      ds.reset();
    }
  }

  onBody(chunk: Buffer): void {
    const ex = this.ex;
    if (ex !== undefined && !ex.pushBody(chunk)) this.pause(PAUSED_BODY);
  }

  onComplete(trailers: HeaderMap | undefined): void {
    this.requestStart = 0;
    const ex = this.ex;
    if (ex === undefined) return;
    ex.requestDone(trailers);
    if (ex.responseDone) this.exchangeDone(ex);
  }

  // ---- the read loop

  private requestBegins(): void {
    this.idleSince = 0;
    const t = now();
    this.headStart = t;
    this.requestStart = t;
  }

  /** Parses held reads until they run out or a request waits for its response. */
  private feed(): void {
    this.feeding = true;
    const held = this.held;
    try {
      while (held.length > 0 && !this.closing && !this.socket.destroyed) {
        if (this.parser.done) {
          if (this.ex !== undefined) break; // the response first; the rest stays held
          this.parser.reset();
          this.requestBegins();
        } else if (this.headStart === 0 && this.parser.idle) this.requestBegins();
        const buf = held.shift()!;
        this.heldLen -= buf.length;
        const rest = this.parser.execute(buf);
        if (this.parser.upgraded) {
          const after = held.length === 0 ? (rest ?? EMPTY) : Buffer.concat([rest ?? EMPTY, ...held]);
          this.held = [];
          this.heldLen = 0;
          this.handOff(this.upgradeHead!, after);
          return;
        }
        if (rest !== undefined) {
          held.unshift(rest);
          this.heldLen += rest.length;
        }
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.feeding = false;
    }
    if (this.heldLen <= HOLD_LIMIT) this.resume(PAUSED_HELD);
  }

  private hold(buf: Buffer): void {
    this.held.push(buf);
    this.heldLen += buf.length;
    if (this.heldLen > HOLD_LIMIT) this.pause(PAUSED_HELD);
  }

  private readonly readHeld = (): void => {
    if (!this.closing && !this.gone && this.ex === undefined && !this.feeding) this.feed();
  };

  private pause(why: number): void {
    if (this.pausedFor === 0) this.socket.pause();
    this.pausedFor |= why;
  }

  /** `why`: the reasons that no longer hold (all of them when closing, to read until the FIN). */
  resume(why = PAUSED_BODY | PAUSED_HELD): void {
    if (this.pausedFor === 0) return;
    this.pausedFor &= ~why;
    if (this.pausedFor === 0) this.socket.resume();
  }

  // ---- the exchange's end

  /** Called by the exchange when its response has been written in full. */
  responseDone(ex: H1Downstream): void {
    if (ex.closeAfter || this.server.draining) {
      this.closeGracefully();
      return;
    }
    if (!ex.requestComplete) {
      // The rest of the body is read and dropped; the next request follows it.
      ex.dropBody();
      this.resume(PAUSED_BODY);
      return;
    }
    this.exchangeDone(ex);
  }

  private exchangeDone(ex: H1Downstream): void {
    if (this.ex !== ex) return;
    this.ex = undefined;
    ex.dropBody();
    if (this.closing || this.gone) return;
    if (this.server.draining) return this.closeGracefully();
    this.resume(PAUSED_BODY);
    if (this.heldLen === 0) this.idleSince = now();
    else if (!this.feeding) queueMicrotask(this.readHeld);
    // else: feed() goes on with the reads it holds
  }

  closeIfIdle(): void {
    if (this.between) this.closeGracefully();
  }

  /** Our FIN after what was written; the client's bytes are read and dropped until its FIN. */
  private closeGracefully(): void {
    if (this.closing || this.gone) return;
    this.closing = true;
    this.closingSince = now();
    this.dropHeld();
    this.resume();
    this.socket.end();
  }

  private dropHeld(): void {
    this.held.length = 0;
    this.heldLen = 0;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private handOff(head: ParsedRequestHead, rest: Buffer): void {
    this.gone = true;
    this.server.removed(this);
    const s = this.socket;
    s.off('data', this.onData);
    s.off('end', this.onEnd);
    s.off('close', this.onClose);
    s.pause();
    this.server.handlers.onUpgrade(toRequestHead(head), s, rest);
  }

  /** A request that cannot be read (parse error, timeout): answered if still possible, then closed. */
  private fail(err: unknown): void {
    const reply: LocalReply =
      err instanceof H1RequestError
        ? proxyError(err.status, err.code, err.message)
        : proxyError(400, 'WEFT_E_PROXY_BAD_REQUEST', `bad request: ${(err as Error).message}`);
    if (!(err instanceof H1RequestError))
      this.server.logger.error({ err: (err as Error).stack }, 'HTTP/1.1 codec error');
    this.refuse(reply);
  }

  private refuse(reply: LocalReply): void {
    const ex = this.ex;
    // A response already started: a status line now would land inside its body. Only a cut is honest.
    if (ex !== undefined && ex.headersSent) return void this.socket.destroy();
    ex?.abort();
    if (this.closing || this.gone) return;
    this.closing = true;
    this.closingSince = now();
    this.dropHeld();
    this.resume();
    writeRawReply(this.socket, reply);
  }

  checkTimeouts(t: number, limits: H1ServerLimits): void {
    if (this.gone) return;
    if (this.closing) {
      if (t - this.closingSince >= LINGER_MS) this.socket.destroy();
      return;
    }
    if (this.headStart > 0 && t - this.headStart >= limits.headersTimeoutMs) this.timedOut();
    else if (
      this.requestStart > 0 &&
      limits.requestTimeoutMs > 0 &&
      t - this.requestStart >= limits.requestTimeoutMs
    )
      this.timedOut();
    else if (this.ex === undefined && this.idleSince > 0 && t - this.idleSince >= limits.keepAliveTimeoutMs)
      this.socket.destroy();
  }

  private timedOut(): void {
    this.refuse(
      proxyError(408, 'WEFT_E_PROXY_BAD_REQUEST', 'request timeout: the request was not received in time'),
    );
  }
}

/** The request body as a stream; reading it resumes a socket paused for backpressure. */
class RequestBody extends Readable {
  constructor(private readonly conn: H1Connection) {
    super();
  }
  override _read(): void {
    this.conn.resume(PAUSED_BODY);
  }
}

/** The response body for a streamed response: framed (chunked or not) onto the socket. */
class ResponseBody extends Writable {
  constructor(private readonly ex: H1Downstream) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.ex.writeBody(chunk, cb);
  }
  override _final(cb: (err?: Error | null) => void): void {
    this.ex.endBody();
    cb();
  }
}

/** One request and its response on an HTTP/1.1 connection. */
export class H1Downstream implements Downstream {
  readonly protocol = 'http1' as const;
  readonly remoteAddress: string;
  readonly peer: PeerIdentity | undefined;
  readonly head: RequestHead;
  readonly hasBody: boolean;
  headersSent = false;
  requestComplete: boolean;
  responseDone = false;
  /** Close the connection after this response. */
  closeAfter = false;
  /** The exchange is over for the proxy: its response written, or aborted. */
  private over = false;
  private completed = false;
  private stream: RequestBody | undefined;
  private dropping = false;
  private trailersIn: HeaderMap | undefined;
  private writer: ResponseBody | undefined;
  private framing = Framing.None;
  private trailersOut: HeaderMap | undefined;
  private continued = false;
  /** A chunk was written whose closing CRLF has not been. */
  private chunkOpen = false;
  private doneCb: ((complete: boolean) => void) | undefined;

  constructor(
    private readonly conn: H1Connection,
    private readonly req: ParsedRequestHead,
  ) {
    this.remoteAddress = conn.remoteAddress;
    this.peer = peerOf(conn.socket);
    this.head = toRequestHead(req);
    this.hasBody = req.framing !== 'none';
    this.requestComplete = !this.hasBody;
  }

  get body(): Readable {
    if (this.stream === undefined) {
      this.stream = new RequestBody(this.conn);
      if (this.requestComplete) this.stream.push(null);
    }
    return this.stream;
  }

  get responseBody(): Writable {
    return (this.writer ??= new ResponseBody(this));
  }

  // ---- the request side, fed by the connection

  /** False when the reader wants no more for now. */
  pushBody(chunk: Buffer): boolean {
    if (this.dropping) return true;
    return this.body.push(chunk);
  }

  requestDone(trailers: HeaderMap | undefined): void {
    if (this.requestComplete) return; // no body: the stream, if anyone asks for it, starts ended
    this.requestComplete = true;
    this.trailersIn = trailers;
    if (!this.dropping) this.body.push(null);
  }

  /** The body is not wanted any more: what is left of it is read and dropped. */
  dropBody(): void {
    if (this.dropping) return;
    this.dropping = true;
    const s = this.stream;
    if (s !== undefined && !s.readableEnded) s.destroy();
  }

  requestTrailers(): HeaderMap | undefined {
    return this.trailersIn;
  }

  // ---- the response side

  sendContinue(): void {
    if (this.over || this.headersSent || this.continued || this.requestComplete) return;
    if (!this.req.expectContinue || this.req.version !== '1.1') return;
    this.continued = true;
    this.conn.socket.write(CONTINUE, 'latin1');
  }

  respond(status: number, headers: HeaderMap, endStream: boolean): void {
    if (this.over) return;
    if (this.headersSent) throw new Error('the response head was already sent');
    const head = this.responseHead(status, headers, endStream ? 0 : undefined);
    this.headersSent = true;
    this.conn.socket.write(head, 'latin1');
    if (endStream) this.endBody();
  }

  respondWhole(status: number, headers: HeaderMap, body: Buffer): void {
    if (this.over) return;
    if (this.headersSent) throw new Error('the response head was already sent');
    const head = this.responseHead(status, headers, body.length);
    this.headersSent = true;
    if (this.framing === Framing.None || body.length === 0) this.conn.socket.write(head, 'latin1');
    else {
      // One buffer, one write: the head and a small body leave in the same segment.
      const out = Buffer.allocUnsafe(head.length + body.length);
      out.write(head, 0, 'latin1');
      body.copy(out, head.length);
      this.conn.socket.write(out);
    }
    this.finish();
  }

  end(trailers?: HeaderMap): void {
    if (this.over) return;
    if (!this.headersSent) this.respond(200, Object.create(null) as HeaderMap, false);
    this.trailersOut = trailers;
    if (this.writer !== undefined) this.writer.end();
    else this.endBody();
  }

  reset(): void {
    // After a complete response the connection may already carry the next request.
    if (this.over && this.completed) return;
    this.abort();
    this.conn.destroy();
  }

  onDone(cb: (complete: boolean) => void): void {
    if (this.over) return void process.nextTick(cb, this.completed);
    const prior = this.doneCb;
    this.doneCb =
      prior === undefined
        ? cb
        : (complete) => {
            prior(complete);
            cb(complete);
          };
  }

  /** The exchange ended any other way than by our full response. */
  abort(): void {
    if (this.over) return;
    this.over = true;
    this.completed = false;
    this.dropBody();
    this.writer?.destroy();
    if (this.doneCb !== undefined) process.nextTick(this.doneCb, false);
  }

  /**
   * A piece of a streamed body. The callback comes at once unless the socket's buffer is full
   * (then on 'drain'): no closure per write, and the socket is the only buffer. A chunk's
   * closing CRLF goes out with the next chunk's size line — one write fewer per chunk.
   */
  writeBody(chunk: Buffer, cb: () => void): void {
    if (this.over || this.framing === Framing.None || chunk.length === 0) return cb();
    if (!this.headersSent) this.respond(200, Object.create(null) as HeaderMap, false);
    const s = this.conn.socket;
    if (s.destroyed) return cb();
    let flowing: boolean;
    if (this.framing === Framing.Chunked) {
      s.cork();
      s.write(`${this.chunkOpen ? '\r\n' : ''}${chunk.length.toString(16)}\r\n`, 'latin1');
      flowing = s.write(chunk);
      s.uncork();
      this.chunkOpen = true;
    } else flowing = s.write(chunk);
    if (flowing) cb();
    else s.once('drain', cb); // a socket that dies instead aborts the exchange, and this writer
  }

  endBody(): void {
    if (this.over) return;
    if (this.framing === Framing.Chunked) {
      let t = '';
      if (this.trailersOut !== undefined && !isEmpty(this.trailersOut)) {
        try {
          t = fieldLines(this.trailersOut);
        } catch {
          t = ''; // a field Node would refuse to write is dropped, not sent
        }
      }
      this.conn.socket.write(`${this.chunkOpen ? '\r\n' : ''}0\r\n${t}\r\n`, 'latin1');
    }
    this.finish();
  }

  private finish(): void {
    this.over = true;
    this.completed = true;
    this.responseDone = true;
    this.conn.responseDone(this);
    // After the caller's own bookkeeping, as Node's 'close' on a response: a forwarder that
    // answers a failure locally has counted it as one before it hears the exchange is done.
    if (this.doneCb !== undefined) process.nextTick(this.doneCb, true);
  }

  /**
   * The status line and fields as one latin1 string, checked as Node's writers check them;
   * throws (nothing written) on a field Node would refuse. Picks the body's framing: the given
   * Content-Length, else `length` when the whole body is known, else chunked (HTTP/1.1) or
   * close-delimited (HTTP/1.0).
   */
  private responseHead(status: number, headers: HeaderMap, length: number | undefined): string {
    if (!Number.isInteger(status) || status < 200 || status > 999)
      throw new RangeError(`invalid response status ${status}`);
    const req = this.req;
    let close = !req.keepAlive || this.conn.server.draining;
    let hasLength = false;
    let s = `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    for (const name in headers) {
      const values = headers[name]!;
      // Connection-scoped fields are this codec's to write.
      if (name === 'connection') {
        if (values.some((v) => CLOSE_TOKEN.test(v))) close = true;
        continue;
      }
      if (name === 'transfer-encoding' || name === 'keep-alive') continue;
      if (name === 'content-length') hasLength = true;
      if (!isValidToken(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
      for (let i = 0; i < values.length; i++) {
        const v = values[i]!;
        if (!isValidHeaderValue(v)) throw new TypeError(`invalid character in header "${name}"`);
        s += `${name}: ${v}\r\n`;
      }
    }
    if (req.method === 'HEAD' || status === 204 || status === 304) this.framing = Framing.None;
    else if (hasLength) this.framing = Framing.Length;
    else if (length !== undefined) {
      s += `content-length: ${length}\r\n`;
      this.framing = Framing.Length;
    } else if (req.version === '1.1') {
      s += 'transfer-encoding: chunked\r\n';
      this.framing = Framing.Chunked;
    } else {
      this.framing = Framing.Close;
      close = true;
    }
    // A client that sent `Expect: 100-continue` and got no 100 may or may not send its body
    // now: the connection cannot be trusted to be at a request boundary (as Node does).
    if (req.expectContinue && !this.continued && !this.requestComplete) close = true;
    if (close) s += 'connection: close\r\n';
    else if (req.version === '1.0') s += 'connection: keep-alive\r\n';
    this.closeAfter = close;
    return s + '\r\n';
  }
}
