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
}

const DEFAULT_MAX_MESSAGE = 64 * 1024 * 1024;
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

/**
 * One bidirectional call. 'message' for each message the server sends; 'status' exactly once,
 * when the call is over for whatever reason (the server's status, a lost connection, cancel()).
 */
export class GrpcCall extends EventEmitter<{ message: [Buffer]; status: [StatusEvent] }> {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Length of the message being read, once its header is in; -1 while waiting for a header. */
  private expecting = -1;
  private status: StatusEvent | undefined;
  private done = false;

  constructor(
    private readonly stream: ClientHttp2Stream,
    private readonly maxMessageBytes: number,
  ) {
    super();
    stream.on('response', (headers) => this.onHeaders(headers, true));
    stream.on('trailers', (headers) => this.onHeaders(headers, false));
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', (err: NodeJS.ErrnoException) => {
      this.status ??= { code: GrpcStatus.UNAVAILABLE, details: err.message };
    });
    // The server's side is over (its trailers came, or it reset): so is the call. Our side is
    // closed too, else the stream would stay half-open and never 'close'.
    stream.on('end', () => {
      this.finish();
      if (!stream.destroyed) stream.close();
    });
    stream.on('close', () => this.finish());
  }

  /** Sends one message (its encoded bytes). */
  write(message: Uint8Array): void {
    if (this.done || this.stream.destroyed) return;
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    header[0] = 0; // not compressed
    header.writeUInt32BE(message.length, 1);
    this.stream.write(Buffer.concat([header, message]));
  }

  /** Ends the call from our side; 'status' reports CANCELLED. */
  cancel(details = 'cancelled by the client'): void {
    this.end({ code: GrpcStatus.CANCELLED, details });
  }

  private end(status: StatusEvent): void {
    this.status ??= status;
    if (!this.stream.destroyed) this.stream.close(constants.NGHTTP2_CANCEL);
    this.finish();
  }

  private onHeaders(headers: IncomingHttpHeaders, initial: boolean): void {
    if (initial) {
      const http = Number(headers[':status']);
      if (http !== 200) {
        this.status ??= { code: statusFromHttp(http), details: `the server answered HTTP ${http}` };
        return;
      }
    }
    const code = headers['grpc-status'];
    if (code !== undefined) {
      const n = Number(code);
      this.status ??= {
        code: Number.isInteger(n) ? n : GrpcStatus.UNKNOWN,
        details: decodeMessage(headers['grpc-message']),
      };
    }
  }

  private onData(chunk: Buffer): void {
    if (this.done) return;
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
        if (this.done) return;
      }
    }
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    const rst = this.stream.rstCode;
    const status: StatusEvent = this.status ?? {
      code: rst === constants.NGHTTP2_REFUSED_STREAM ? GrpcStatus.UNAVAILABLE : GrpcStatus.UNKNOWN,
      details:
        rst !== undefined && rst !== constants.NGHTTP2_NO_ERROR
          ? `the stream was reset (HTTP/2 error ${rst})`
          : 'the call ended without a grpc-status',
    };
    this.emit('status', status);
  }
}

/** A connection to one gRPC server, made when a call needs it and again after it is lost. */
export class GrpcChannel {
  private session: ClientHttp2Session | undefined;
  private closed = false;
  /** Calls open: while there are any, the connection keeps the process alive. */
  private active = 0;

  constructor(private readonly opts: GrpcChannelOptions) {}

  /** Starts a bidirectional call on `path` (`/package.Service/Method`) with these headers. */
  bidi(path: string, metadata: Record<string, string> = {}): GrpcCall {
    const session = this.connection();
    const stream = session.request(
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
    const call = new GrpcCall(stream, this.opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE);
    if (this.active++ === 0) session.ref();
    call.once('status', () => {
      if (--this.active === 0) this.session?.unref();
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
    // A connection error reaches each call on it as a stream error; nothing to do here.
    session.on('error', () => {});
    session.on('close', () => {
      if (this.session === session) this.session = undefined;
    });
    // An idle connection (no call open) must not keep a process alive; bidi() refs it.
    session.unref();
    this.session = session;
    return session;
  }
}
