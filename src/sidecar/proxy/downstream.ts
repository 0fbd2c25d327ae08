// The client side of one request, in HTTP/1.1 or HTTP/2, behind one interface: the request head
// (authority and origin-form path, also from an absolute-form HTTP/1.1 request line), its body
// and trailers, and a way to answer — interim 100, headers, body, trailers, or a reset.

import type { PeerIdentity } from './peer-identity.js';
import http2 from 'node:http2';
import type { Readable, Writable } from 'node:stream';
import { fromHttp2Headers, toOutgoing, type HeaderMap } from './header-map.js';

const { NGHTTP2_NO_ERROR, NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM } = http2.constants;

export interface RequestHead {
  method: string;
  authority: string;
  /** Origin-form: `/path?query` (or `*`). */
  path: string;
  scheme: string;
  /** Without `host` (carried as `authority`) and without pseudo-headers. */
  headers: HeaderMap;
  /** Why the request cannot be routed (answered 400), when it cannot: checked once, here. */
  invalid?: string | undefined;
  /** A transfer-coding the proxy cannot relay (answered 501). */
  unsupported?: string | undefined;
}

export interface Downstream {
  readonly protocol: 'http1' | 'http2';
  readonly remoteAddress: string;
  /** The client's verified identity when the connection is mTLS. */
  readonly peer: PeerIdentity | undefined;
  readonly head: RequestHead;
  readonly hasBody: boolean;
  readonly body: Readable;
  requestTrailers(): HeaderMap | undefined;
  readonly headersSent: boolean;
  sendContinue(): void;
  respond(status: number, headers: HeaderMap, endStream: boolean): void;
  /** The whole response at once: head and body in one write, no trailers. */
  respondWhole(status: number, headers: HeaderMap, body: Buffer): void;
  readonly responseBody: Writable;
  /** Ends the response, with trailers when the codec can carry them. */
  end(trailers?: HeaderMap): void;
  /** Aborts the exchange: RST_STREAM on HTTP/2 (with the given code), closes the connection on 1.1. */
  reset(rstCode?: number): void;
  /** `complete` is false when the exchange ended any other way than by our full response. */
  onDone(cb: (complete: boolean) => void): void;
}

// RFC 3986 §3.2.2 host (reg-name, IPv4, or a bracketed IPv6 literal) and an optional port.
// Anything else (`svc:abc`, userinfo, spaces) would break every later use of the authority — a
// redirect's Location, the upstream Host — so it is refused where the head is parsed.
const AUTHORITY = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=%]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{0,5})?$/;

/** Undefined when `authority` can be routed and forwarded; else why not. */
export function authorityProblem(authority: string): string | undefined {
  if (authority === '') return 'the request has no Host or :authority';
  if (!AUTHORITY.test(authority)) return `invalid authority ${JSON.stringify(authority)}`;
  const colon = authority.lastIndexOf(':');
  if (colon > authority.lastIndexOf(']') && Number(authority.slice(colon + 1)) > 65535)
    return `invalid port in authority ${JSON.stringify(authority)}`;
  return undefined;
}

/**
 * Splits an HTTP/1.1 request target: absolute-form (what HTTP_PROXY clients send) or origin-form,
 * and checks the authority: one valid Host (RFC 9112 §3.2: an HTTP/1.1 request without one, or
 * with two, is a 400), unless the absolute-form target carries it.
 */
export function parseRequestTarget(
  url: string,
  host: string[] | undefined,
  httpVersion: string,
): { authority: string; path: string; scheme: string; invalid?: string | undefined } {
  if (/^https?:\/\//i.test(url)) {
    try {
      const u = new URL(url);
      // The absolute-form authority wins over Host (RFC 9112 §3.2.2).
      if (u.host !== '')
        return { authority: u.host, path: `${u.pathname}${u.search}`, scheme: u.protocol.slice(0, -1) };
    } catch {
      // fall through: routed as origin-form, will most likely find no route
    }
  }
  const path = url === '' ? '/' : url;
  if (host === undefined || host.length === 0) {
    // HTTP/1.0 predates Host; such a request finds no virtual host (404) rather than a 400.
    const invalid = httpVersion === '1.0' ? undefined : 'an HTTP/1.1 request needs a Host header';
    return { authority: '', path, scheme: 'http', invalid };
  }
  const authority = host[0]!;
  const invalid = host.length > 1 ? 'more than one Host header' : authorityProblem(authority);
  return { authority, path, scheme: 'http', invalid };
}

/**
 * Transfer-Encoding is hop-by-hop: the proxy undoes the chunking and re-frames the body. Any
 * other coding (`gzip, chunked`) would be silently dropped with the header, handing the
 * upstream a compressed body it was not told about — so, as Envoy does, it is refused (501).
 */
export function unsupportedTransferCoding(te: string[] | undefined): string | undefined {
  if (te === undefined) return undefined;
  for (const v of te)
    for (const c of v.split(',')) {
      const coding = c.trim().toLowerCase();
      if (coding !== 'chunked' && coding !== '')
        return `transfer-coding ${JSON.stringify(coding)} is not supported (only chunked)`;
    }
  return undefined;
}

export class Http2Downstream implements Downstream {
  readonly protocol = 'http2' as const;
  readonly remoteAddress: string;
  readonly head: RequestHead;
  readonly hasBody: boolean;
  private trailersIn: HeaderMap | undefined;
  private trailersOut: HeaderMap | undefined;
  private ended = false;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    flags: number,
    readonly peer: PeerIdentity | undefined = undefined,
  ) {
    this.remoteAddress = stream.session?.socket?.remoteAddress ?? '';
    const map = fromHttp2Headers(headers);
    const authority = headers[':authority'] ?? map['host']?.[0] ?? '';
    delete map['host'];
    this.head = {
      method: headers[':method'] ?? 'GET',
      authority,
      path: headers[':path'] ?? '/',
      scheme: headers[':scheme'] ?? 'http',
      headers: map,
      invalid: authorityProblem(authority),
    };
    this.hasBody = (flags & NGHTTP2_FLAG_END_STREAM) === 0;
    stream.on('trailers', (t: http2.IncomingHttpHeaders) => {
      this.trailersIn = fromHttp2Headers(t);
    });
    stream.on('wantTrailers', () => {
      stream.sendTrailers(toOutgoing(this.trailersOut ?? {}));
    });
  }

  get body(): Readable {
    return this.stream;
  }
  get responseBody(): Writable {
    return this.stream;
  }
  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  requestTrailers(): HeaderMap | undefined {
    return this.trailersIn;
  }

  sendContinue(): void {
    if (!this.stream.headersSent && !this.stream.closed) this.stream.additionalHeaders({ ':status': 100 });
  }

  respond(status: number, headers: HeaderMap, endStream: boolean): void {
    if (this.stream.closed) return;
    // waitForTrailers lets upstream trailers (grpc-status) follow the body; without any, an
    // empty trailer set is sent as an empty DATA frame with END_STREAM.
    this.stream.respond(
      { ...toOutgoing(headers), ':status': status },
      { endStream, waitForTrailers: !endStream },
    );
    if (endStream) this.ended = true;
  }

  respondWhole(status: number, headers: HeaderMap, body: Buffer): void {
    if (this.stream.closed) return;
    this.stream.respond({ ...toOutgoing(headers), ':status': status }, { endStream: body.length === 0 });
    this.ended = true;
    if (body.length > 0) this.stream.end(body);
  }

  end(trailers?: HeaderMap): void {
    this.trailersOut = trailers;
    this.ended = true;
    if (!this.stream.closed) this.stream.end();
  }

  reset(rstCode: number = NGHTTP2_CANCEL): void {
    if (!this.stream.closed) this.stream.close(rstCode);
  }

  onDone(cb: (complete: boolean) => void): void {
    this.stream.once('close', () => cb(this.ended && this.stream.rstCode === NGHTTP2_NO_ERROR));
  }
}
