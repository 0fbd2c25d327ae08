// One request to one upstream endpoint, in HTTP/1.1 or h2c, behind one small interface so the
// forwarder does not care which: a writable request body, a response with a readable body and
// trailers, 100-continue, and failures classified as connect failure, reset or timeout.

import type { Endpoint, RuntimeCluster, UpstreamTls } from '../runtime-config.js';
import http2 from 'node:http2';
import { Writable, type Readable } from 'node:stream';
import { fromHttp2Headers, toOutgoing, type HeaderMap } from './header-map.js';
import {
  fieldLines,
  isValidHeaderValue,
  isValidPath,
  isValidToken,
  type H1Events,
  type H1Response,
} from './upstream-h1.js';
import type { UpstreamPool } from './upstream-pool.js';

const { NGHTTP2_FLAG_END_STREAM, NGHTTP2_NO_ERROR, NGHTTP2_CANCEL } = http2.constants;

export interface UpstreamHead {
  method: string;
  /** Origin-form path with query. */
  path: string;
  authority: string;
  scheme: string;
  /** Hop-by-hop fields already removed. */
  headers: HeaderMap;
  hasBody: boolean;
  expectContinue: boolean;
}

export interface UpstreamResponse {
  status: number;
  headers: HeaderMap;
  /** The response ended with its headers (no body, no trailers: e.g. gRPC trailers-only). */
  endStream: boolean;
  /** The whole body, already received with the head (HTTP/1.1): no stream, no trailers. */
  whole?: Buffer | undefined;
  /** The body as a stream; undefined exactly when `whole` is set. */
  body: Readable | undefined;
  /** Trailers, once `body` has ended. */
  trailers(): HeaderMap | undefined;
}

export type UpstreamFailureKind = 'connect' | 'reset';

export interface UpstreamFailure {
  kind: UpstreamFailureKind;
  message: string;
  /** HTTP/2 RST_STREAM code from the upstream, to pass on to an HTTP/2 client. */
  rstCode?: number;
}

export interface UpstreamEvents {
  onContinue(): void;
  onResponse(res: UpstreamResponse): void;
  /** Called at most once, before or after onResponse. */
  onFailure(f: UpstreamFailure): void;
}

export interface UpstreamRequest {
  /** Only for requests with a body. */
  readonly body: Writable;
  /** Ends the request body, with trailers when there are any. */
  finish(trailers?: HeaderMap): void;
  /** Cancels the request (RST_STREAM CANCEL on h2, closes the connection on HTTP/1.1). */
  abort(): void;
}

export interface UpstreamTarget {
  host: string;
  port: number;
  protocol: 'http1' | 'http2';
  connectTimeoutMs: number;
  /** Set for a sidecar endpoint of an mTLS cluster. */
  tls?: UpstreamTls | undefined;
}

/** The mTLS settings for an endpoint, when its cluster has them and it is a sidecar. */
export function endpointTls(cluster: RuntimeCluster, endpoint: Endpoint): UpstreamTls | undefined {
  return endpoint.tls ? cluster.tls : undefined;
}

export function startUpstream(
  pool: UpstreamPool,
  target: UpstreamTarget,
  head: UpstreamHead,
  ev: UpstreamEvents,
): UpstreamRequest {
  return target.protocol === 'http2' ? startH2(pool, target, head, ev) : startH1(pool, target, head, ev);
}

function once(ev: UpstreamEvents): UpstreamEvents {
  let failed = false;
  return {
    onContinue: () => ev.onContinue(),
    onResponse: (r) => ev.onResponse(r),
    onFailure: (f) => {
      if (failed) return;
      failed = true;
      ev.onFailure(f);
    },
  };
}

function describe(err: Error): string {
  return err.message;
}

// Methods for which Node's client sends `Content-Length: 0` when there is no body: the
// upstream must not wait for a body that never comes.
const BODYLESS_BY_DEFAULT = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);

// `host` travels as the authority; TE is connection-scoped on HTTP/1.1 (it would have to be
// listed in Connection), so neither is copied from the map.
const skipOnH1 = (name: string): boolean => name === 'host' || name === 'te';

/** The request head as written on the wire; throws on what Node's own client would refuse. */
export function h1RequestHead(head: UpstreamHead): { text: string; chunked: boolean } {
  if (!isValidToken(head.method)) throw new TypeError(`invalid method ${JSON.stringify(head.method)}`);
  if (!isValidPath(head.path)) throw new TypeError('request path contains unescaped characters');
  if (!isValidHeaderValue(head.authority)) throw new TypeError('invalid character in authority');
  let text = `${head.method} ${head.path} HTTP/1.1\r\nhost: ${head.authority}\r\n${fieldLines(head.headers, skipOnH1)}`;
  const hasLength = head.headers['content-length'] !== undefined;
  let chunked = false;
  if (head.hasBody) {
    if (!hasLength) {
      text += 'transfer-encoding: chunked\r\n';
      chunked = true;
    }
  } else if (!hasLength && !BODYLESS_BY_DEFAULT.has(head.method)) text += 'content-length: 0\r\n';
  return { text: text + '\r\n', chunked };
}

// RFC 9110 §9.2.2: a client may repeat these automatically when a connection fails.
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

function startH1(
  pool: UpstreamPool,
  target: UpstreamTarget,
  head: UpstreamHead,
  events: UpstreamEvents,
): UpstreamRequest {
  const { text, chunked } = h1RequestHead(head);
  return pool.h1(target.host, target.port, target.tls).request(
    {
      head: text,
      hasBody: head.hasBody,
      chunked,
      isHead: head.method === 'HEAD',
      flushHead: head.expectContinue,
      connectTimeoutMs: target.connectTimeoutMs,
      replayable: !head.hasBody && IDEMPOTENT.has(head.method),
    },
    new H1EventAdapter(events),
  );
}

/** Maps the HTTP/1.1 client's events onto the codec-neutral ones, once per failure. */
class H1EventAdapter implements H1Events {
  private failed = false;
  constructor(private readonly ev: UpstreamEvents) {}
  onContinue(): void {
    this.ev.onContinue();
  }
  onResponse(res: H1Response): void {
    this.ev.onResponse({
      status: res.status,
      headers: res.headers,
      endStream: false,
      whole: res.whole,
      body: res.body,
      trailers: () => res.trailers,
    });
  }
  onFailure(connected: boolean, message: string, responded: boolean): void {
    if (this.failed) return;
    this.failed = true;
    this.ev.onFailure({
      kind: connected ? 'reset' : 'connect',
      message: responded ? 'upstream closed the connection mid-response' : message,
    });
  }
}

function startH2(
  pool: UpstreamPool,
  target: UpstreamTarget,
  head: UpstreamHead,
  events: UpstreamEvents,
): UpstreamRequest {
  const ev = once(events);
  const conn = pool.session(target.host, target.port, target.connectTimeoutMs, target.tls);
  const headers: http2.OutgoingHttpHeaders = {
    ...toOutgoing(head.headers),
    ':method': head.method,
    ':path': head.path,
    ':authority': head.authority,
    ':scheme': head.scheme,
  };
  delete headers['host'];
  let stream: http2.ClientHttp2Stream;
  try {
    stream = conn.session.request(headers, { endStream: !head.hasBody, waitForTrailers: head.hasBody });
  } catch (err) {
    // The session went away between lookup and use; report it like a failed connect.
    const e = err as Error;
    queueMicrotask(() => ev.onFailure({ kind: 'connect', message: describe(e) }));
    return { body: new Writable({ write: (_c, _e, cb) => cb() }), finish() {}, abort() {} };
  }
  let trailers: HeaderMap | undefined;
  let requestTrailers: HeaderMap | undefined;
  let responded = false;
  let ended = false;
  stream.on('continue', () => ev.onContinue());
  stream.on('response', (h, flags) => {
    responded = true;
    const endStream = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
    if (endStream) ended = true;
    ev.onResponse({
      status: Number(h[':status'] ?? 502),
      headers: fromHttp2Headers(h),
      endStream,
      body: stream,
      trailers: () => trailers,
    });
  });
  stream.on('trailers', (t) => {
    trailers = fromHttp2Headers(t);
  });
  stream.on('end', () => {
    ended = true;
  });
  stream.on('wantTrailers', () => stream.sendTrailers(toOutgoing(requestTrailers ?? {})));
  stream.on('error', (err: Error) => {
    const kind = conn.connected ? 'reset' : 'connect';
    ev.onFailure({
      kind,
      message: describe(conn.connected ? err : (conn.failure ?? err)),
      rstCode: stream.rstCode,
    });
  });
  stream.on('close', () => {
    // A RST_STREAM (e.g. CANCEL from a gRPC server) closes without an 'error' event.
    if (stream.rstCode !== NGHTTP2_NO_ERROR || !responded || !ended) {
      const message = conn.connected
        ? `upstream reset the stream (code ${stream.rstCode})`
        : describe(conn.failure ?? new Error('connection failed'));
      ev.onFailure({ kind: conn.connected ? 'reset' : 'connect', message, rstCode: stream.rstCode });
    }
  });
  return {
    body: stream,
    finish(t) {
      requestTrailers = t;
      if (head.hasBody) stream.end();
    },
    abort() {
      if (!stream.closed) stream.close(NGHTTP2_CANCEL);
    },
  };
}
