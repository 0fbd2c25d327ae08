// One request to one upstream endpoint, in HTTP/1.1 or h2c, behind one small interface so the
// forwarder does not care which: a writable request body, a response with a readable body and
// trailers, 100-continue, and failures classified as connect failure, reset or timeout.

import http from 'node:http';
import http2 from 'node:http2';
import { Writable, type Readable } from 'node:stream';
import { fromDistinct, fromHttp2Headers, isEmpty, toOutgoing, type HeaderMap } from './header-map.js';
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
  body: Readable;
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
  body: Writable;
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

function startH1(
  pool: UpstreamPool,
  target: UpstreamTarget,
  head: UpstreamHead,
  events: UpstreamEvents,
): UpstreamRequest {
  const ev = once(events);
  const headers = toOutgoing(head.headers);
  headers['host'] = head.authority;
  // TE is connection-scoped on HTTP/1.1 (it would have to be listed in Connection).
  delete headers['te'];
  if (head.hasBody && headers['content-length'] === undefined) headers['transfer-encoding'] = 'chunked';
  const req = http.request({
    host: target.host,
    port: target.port,
    method: head.method,
    path: head.path,
    headers,
    agent: pool.agent(target.host, target.port),
    setHost: false,
  });
  let connected = false;
  let timer: NodeJS.Timeout | undefined;
  req.on('socket', (socket) => {
    if (!socket.connecting) {
      connected = true;
      return;
    }
    if (target.connectTimeoutMs > 0) {
      timer = setTimeout(() => {
        req.destroy(
          Object.assign(new Error(`connect timeout after ${target.connectTimeoutMs} ms`), {
            code: 'ETIMEDOUT',
          }),
        );
      }, target.connectTimeoutMs);
    }
    socket.once('connect', () => {
      connected = true;
      clearTimeout(timer);
    });
  });
  req.on('continue', () => ev.onContinue());
  req.on('response', (res) => {
    clearTimeout(timer);
    const fail = (): void =>
      ev.onFailure({ kind: 'reset', message: 'upstream closed the connection mid-response' });
    res.on('aborted', fail);
    res.on('error', fail);
    ev.onResponse({
      status: res.statusCode ?? 502,
      headers: fromDistinct(res.headersDistinct),
      endStream: false,
      body: res,
      trailers: () => (isEmpty(res.trailersDistinct) ? undefined : fromDistinct(res.trailersDistinct)),
    });
  });
  req.on('error', (err) => {
    clearTimeout(timer);
    ev.onFailure({ kind: connected ? 'reset' : 'connect', message: describe(err) });
  });
  if (!head.hasBody) req.end();
  else if (head.expectContinue) req.flushHeaders(); // the upstream must see the expectation now
  return {
    body: req,
    finish(trailers) {
      if (trailers && !isEmpty(trailers)) req.addTrailers(toOutgoing(trailers));
      req.end();
    },
    abort() {
      req.destroy();
    },
  };
}

function startH2(
  pool: UpstreamPool,
  target: UpstreamTarget,
  head: UpstreamHead,
  events: UpstreamEvents,
): UpstreamRequest {
  const ev = once(events);
  const conn = pool.session(target.host, target.port, target.connectTimeoutMs);
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
