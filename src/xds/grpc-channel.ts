// A gRPC client channel on node:http2 with just what an ADS client needs: bidirectional streams
// of already-encoded messages over one HTTP/2 connection (TLS or h2c), connected on demand and
// again after it is lost. The sidecar speaks xDS through this instead of @grpc/grpc-js, which
// would cost every sidecar process ~6 MB of memory for features it does not use (name
// resolution, load balancing, retries, channelz). The wire format is gRPC over HTTP/2 as the
// gRPC project specifies it ("gRPC over HTTP2", PROTOCOL-HTTP2.md): a POST with
// `content-type: application/grpc` and `te: trailers`, messages framed as a 1-byte compression
// flag, a 4-byte big-endian length and the bytes, and the outcome in `grpc-status` /
// `grpc-message` trailers (or in the headers of a trailers-only response).

import { EventEmitter } from 'node:events';
import {
  connect,
  constants,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
} from 'node:http2';
import type { ConnectionOptions } from 'node:tls';
import { WEFT_VERSION } from '../version.js';

/** The gRPC status codes this client produces or reads (google.rpc.Code). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

export interface StatusEvent {
  code: number;
  details: string;
}

/** TLS for a channel: the roots to trust, and our certificate when the server asks for one. */
export interface ChannelTls {
  /** PEM roots the server's chain must lead to. */
  ca: string;
  key?: string;
  cert?: string;
  /** SNI; an IP address is not allowed there, so give a name when the address is an IP. */
  servername?: string;
  /** Replaces the host name check (e.g. by a SPIFFE ID check). */
  checkServerIdentity?: ConnectionOptions['checkServerIdentity'];
}

export interface GrpcChannelOptions {
  /** `host:port` (IPv6 as `[::1]:port`). */
  address: string;
  /** TLS (1.3 only), or a function asked at each new connection (renewed certificates); none: h2c. */
  tls?: ChannelTls | (() => ChannelTls);
  /** Largest message accepted from the server; default 64 MiB. */
  maxMessageBytes?: number;
  /** How long TCP, TLS and the HTTP/2 preface may take; default 20 s. */
  connectTimeoutMs?: number;
  /** PING interval (and answer deadline) while calls are open; default 30 s, 0 = none. */
  keepaliveMs?: number;
}

const DEFAULT_MAX_MESSAGE = 64 * 1024 * 1024;
const DEFAULT_CONNECT_TIMEOUT_MS = 20_000;
const DEFAULT_KEEPALIVE_MS = 30_000;
const HEADER_BYTES = 5;

/** gRPC's mapping of HTTP statuses that are not 200 (PROTOCOL-HTTP2.md / http-grpc-status-mapping). */
function statusFromHttp(status: number): number {
  switch (status) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

function decodeMessage(v: string | string[] | undefined): string {
  const s = Array.isArray(v) ? v.join(',') : (v ?? '');
  try {
    return decodeURIComponent(s);
  } catch {
    return s; // not percent-encoded as it should be: show it as it came
  }
}

/** gRPC's codes for an HTTP/2 RST_STREAM (PROTOCOL-HTTP2.md, "Errors"). */
function statusFromReset(rst: number): number {
  switch (rst) {
    case constants.NGHTTP2_REFUSED_STREAM:
      return GrpcStatus.UNAVAILABLE;
    case constants.NGHTTP2_CANCEL:
      return GrpcStatus.CANCELLED;
    case constants.NGHTTP2_ENHANCE_YOUR_CALM:
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case constants.NGHTTP2_INADEQUATE_SECURITY:
      return GrpcStatus.PERMISSION_DENIED;
    default:
      return GrpcStatus.INTERNAL;
  }
}

/**
 * One bidirectional call. 'message' for each message the server sends; 'status' exactly once,
 * when the call is over for whatever reason (the server's status, a reset, a lost connection,
 * cancel(), or a call that could not even start).
 */
export class GrpcCall extends EventEmitter<{ message: [Buffer]; status: [StatusEvent] }> {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Length of the message being read, once its header is in; -1 while waiting for a header. */
  private expecting = -1;
  /** What the server said (trailers, a trailers-only answer, an HTTP error) or we decided. */
  private status: StatusEvent | undefined;
  /** The stream failed underneath (connection lost, refused, timed out). */
  private failure: string | undefined;
  /** No more messages are read: the answer is not (or no longer) a gRPC body. */
  private ignoreData = false;
  private done = false;

  constructor(
    private readonly stream: ClientHttp2Stream | undefined,
    private readonly maxMessageBytes: number,
  ) {
    super();
    if (stream === undefined) return;
    stream.on('response', (headers, flags) =>
      this.onResponse(headers, (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0),
    );
    stream.on('trailers', (headers) => this.onStatusHeaders(headers));
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', (err: NodeJS.ErrnoException) => {
      // The server resetting the stream is told by its code (finish() maps it); anything else
      // (the connection lost, refused, timed out) is a failure underneath.
      if (err.code !== 'ERR_HTTP2_STREAM_ERROR') this.failure ??= err.message;
    });
    // The server's side is over: close ours too (else the stream stays half-open and never
    // closes); the status is settled on 'close', when a reset code is known as well.
    stream.on('end', () => {
      if (!stream.destroyed) stream.close();
    });
    stream.on('close', () => this.finish());
  }

  /** A call that never started (no connection could be made): it ends at once with `status`. */
  static failed(status: StatusEvent): GrpcCall {
    const call = new GrpcCall(undefined, 0);
    call.status = status;
    process.nextTick(() => call.finish());
    return call;
  }

  /** Sends one message (its encoded bytes). */
  write(message: Uint8Array): void {
    const stream = this.stream;
    if (this.done || stream === undefined || stream.destroyed) return;
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    header[0] = 0; // not compressed
    header.writeUInt32BE(message.length, 1);
    stream.write(Buffer.concat([header, message]));
  }

  /** Ends the call from our side; 'status' reports CANCELLED. */
  cancel(details = 'cancelled by the client'): void {
    this.end({ code: GrpcStatus.CANCELLED, details });
  }

  private end(status: StatusEvent): void {
    this.status ??= status;
    this.ignoreData = true;
    if (this.stream !== undefined && !this.stream.destroyed) this.stream.close(constants.NGHTTP2_CANCEL);
    this.finish();
  }

  private onResponse(headers: IncomingHttpHeaders, trailersOnly: boolean): void {
    const http = Number(headers[':status']);
    if (http !== 200) {
      this.ignoreData = true;
      // A grpc-status the server gave wins over the HTTP status's mapping.
      if (headers['grpc-status'] === undefined) {
        this.status ??= { code: statusFromHttp(http), details: `the server answered HTTP ${http}` };
        return;
      }
    } else if (!String(headers['content-type'] ?? '').startsWith('application/grpc')) {
      return this.end({
        code: GrpcStatus.UNKNOWN,
        details: `not a gRPC answer (content-type "${String(headers['content-type'] ?? '')}")`,
      });
    }
    // In other response headers a grpc-status means nothing: the trailers carry the status.
    if (trailersOnly || http !== 200) this.onStatusHeaders(headers);
  }

  private onStatusHeaders(headers: IncomingHttpHeaders): void {
    const code = headers['grpc-status'];
    if (code === undefined) return;
    const n = Number(code);
    this.status ??= {
      code: Number.isInteger(n) ? n : GrpcStatus.UNKNOWN,
      details: decodeMessage(headers['grpc-message']),
    };
  }

  private onData(chunk: Buffer): void {
    if (this.done || this.ignoreData) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      const need = this.expecting < 0 ? HEADER_BYTES : this.expecting;
      if (this.buffered < need) return;
      // One copy per message, however many chunks it arrived in.
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
      const part = all.subarray(0, need);
      const rest = all.subarray(need);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
      if (this.expecting < 0) {
        if (part[0] !== 0) {
          return this.end({
            code: GrpcStatus.INTERNAL,
            details: 'the server sent a compressed message, which this client did not ask for',
          });
        }
        const length = part.readUInt32BE(1);
        if (length > this.maxMessageBytes) {
          return this.end({
            code: GrpcStatus.RESOURCE_EXHAUSTED,
            details: `the server sent a message of ${length} bytes, more than the ${this.maxMessageBytes} allowed`,
          });
        }
        this.expecting = length;
      } else {
        this.expecting = -1;
        this.emit('message', part);
        if (this.done || this.ignoreData) return;
      }
    }
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    let status = this.status;
    if (status === undefined) {
      const rst = this.stream?.rstCode;
      status =
        this.failure !== undefined
          ? { code: GrpcStatus.UNAVAILABLE, details: this.failure }
          : rst !== undefined && rst !== constants.NGHTTP2_NO_ERROR
            ? { code: statusFromReset(rst), details: `the server reset the stream (HTTP/2 error ${rst})` }
            : { code: GrpcStatus.UNKNOWN, details: 'the call ended without a grpc-status' };
    } else if (status.code === GrpcStatus.OK && (this.expecting >= 0 || this.buffered > 0)) {
      status = { code: GrpcStatus.INTERNAL, details: 'the stream ended inside a message' };
    }
    this.emit('status', status);
  }
}

/** Per connection: calls open on it (while any are, it keeps the process alive), its pinger. */
interface SessionState {
  calls: number;
  keepalive: NodeJS.Timeout | undefined;
}

/** A connection to one gRPC server, made when a call needs it and again after it is lost. */
export class GrpcChannel {
  private session: ClientHttp2Session | undefined;
  private readonly states = new WeakMap<ClientHttp2Session, SessionState>();
  private closed = false;

  constructor(private readonly opts: GrpcChannelOptions) {}

  /**
   * Starts a bidirectional call on `path` (`/package.Service/Method`) with these headers. Never
   * throws: a call that cannot start (no credentials, a bad certificate, the channel closed)
   * ends at once with UNAVAILABLE and the reason.
   */
  bidi(path: string, metadata: Record<string, string> = {}): GrpcCall {
    let session: ClientHttp2Session;
    let stream: ClientHttp2Stream;
    try {
      session = this.connection();
      stream = session.request(
        {
          ':method': 'POST',
          ':path': path,
          'content-type': 'application/grpc',
          te: 'trailers',
          'user-agent': `weft/${WEFT_VERSION}`,
          ...metadata,
        },
        { endStream: false },
      );
    } catch (e) {
      return GrpcCall.failed({ code: GrpcStatus.UNAVAILABLE, details: (e as Error).message });
    }
    const call = new GrpcCall(stream, this.opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE);
    const state = this.states.get(session)!;
    if (state.calls++ === 0) {
      session.ref();
      this.startKeepalive(session, state);
    }
    call.once('status', () => {
      if (--state.calls > 0 || session.destroyed) return;
      session.unref();
      clearInterval(state.keepalive);
      state.keepalive = undefined;
    });
    return call;
  }

  /** Closes the connection; calls still open end with a status. */
  close(): void {
    this.closed = true;
    this.session?.destroy();
    this.session = undefined;
  }

  private connection(): ClientHttp2Session {
    const current = this.session;
    if (current && !current.closed && !current.destroyed) return current;
    if (this.closed) throw new Error('the gRPC channel is closed');
    const tls = typeof this.opts.tls === 'function' ? this.opts.tls() : this.opts.tls;
    const session = tls
      ? connect(`https://${this.opts.address}`, {
          ca: tls.ca,
          ...(tls.key === undefined ? {} : { key: tls.key, cert: tls.cert }),
          ...(tls.servername === undefined ? {} : { servername: tls.servername }),
          ...(tls.checkServerIdentity ? { checkServerIdentity: tls.checkServerIdentity } : {}),
          minVersion: 'TLSv1.3',
          ALPNProtocols: ['h2'],
        })
      : connect(`http://${this.opts.address}`);
    const state: SessionState = { calls: 0, keepalive: undefined };
    this.states.set(session, state);
    // A server that accepts the connection but never completes TCP, TLS and the HTTP/2 preface.
    const connectMs = this.opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const connectTimer = setTimeout(
      () => session.destroy(new Error(`no HTTP/2 connection to ${this.opts.address} within ${connectMs} ms`)),
      connectMs,
    );
    connectTimer.unref();
    // Not 'connect' (the socket is up): the server's SETTINGS prove it speaks HTTP/2.
    session.once('remoteSettings', () => clearTimeout(connectTimer));
    // A connection error reaches each call on it as a stream error; nothing to do here.
    session.on('error', () => {});
    session.on('close', () => {
      clearTimeout(connectTimer);
      clearInterval(state.keepalive);
      if (this.session === session) this.session = undefined;
    });
    // An idle connection (no call open) must not keep a process alive; bidi() refs it.
    session.unref();
    this.session = session;
    return session;
  }

  /**
   * While calls are open, a PING every keepaliveMs: a connection that died without a FIN (a host
   * gone, a NAT entry dropped) is noticed and its calls end UNAVAILABLE, where a client that only
   * receives would otherwise wait forever.
   */
  private startKeepalive(session: ClientHttp2Session, state: SessionState): void {
    const every = this.opts.keepaliveMs ?? DEFAULT_KEEPALIVE_MS;
    if (every <= 0) return;
    state.keepalive = setInterval(() => {
      if (session.destroyed || session.connecting) return;
      const deadline = setTimeout(
        () => session.destroy(new Error(`no answer to an HTTP/2 PING within ${every} ms`)),
        every,
      );
      deadline.unref();
      const sent = session.ping((err) => {
        clearTimeout(deadline);
        if (err && !session.destroyed) session.destroy(err);
      });
      if (!sent) clearTimeout(deadline);
    }, every);
    state.keepalive.unref();
  }
}
