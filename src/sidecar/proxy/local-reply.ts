// Answers the proxy gives itself, instead of the upstream: errors with a stable code and a
// sentence saying what went wrong, redirects and direct responses. One renderer for all codecs;
// a gRPC client gets a trailers-only response with a grpc-status it understands, because a
// gRPC client ignores HTTP status bodies.

import type { HeaderMap } from './header-map.js';

export type ProxyErrorCode =
  | 'WEFT_E_PROXY_UNKNOWN_SERVICE'
  | 'WEFT_E_PROXY_NO_ROUTE'
  | 'WEFT_E_PROXY_UNKNOWN_CLUSTER'
  | 'WEFT_E_PROXY_NO_HEALTHY_ENDPOINT'
  | 'WEFT_E_PROXY_PROTOCOL_MISMATCH'
  | 'WEFT_E_PROXY_UPSTREAM_CONNECT'
  | 'WEFT_E_PROXY_UPSTREAM_RESET'
  | 'WEFT_E_PROXY_UPSTREAM_TIMEOUT'
  | 'WEFT_E_PROXY_STREAM_IDLE_TIMEOUT'
  | 'WEFT_E_PROXY_HEADERS_TOO_LARGE'
  | 'WEFT_E_PROXY_BAD_REQUEST'
  | 'WEFT_E_PROXY_NOT_IMPLEMENTED'
  | 'WEFT_E_PROXY_DRAINING'
  | 'WEFT_E_PROXY_RBAC_DENIED';

export interface LocalReply {
  status: number;
  /** Absent for replies the config asked for (redirects, direct responses). */
  code?: ProxyErrorCode;
  body: string;
  headers?: HeaderMap;
}

export function proxyError(status: number, code: ProxyErrorCode, message: string): LocalReply {
  return { status, code, body: `${message}\n` };
}

// gRPC's HTTP-to-status mapping (doc/http-grpc-status-mapping.md), with the proxy's own
// timeout reported as DEADLINE_EXCEEDED as Envoy does.
function grpcStatusFor(reply: LocalReply): number {
  if (reply.code === 'WEFT_E_PROXY_UPSTREAM_TIMEOUT' || reply.code === 'WEFT_E_PROXY_STREAM_IDLE_TIMEOUT')
    return 4;
  switch (reply.status) {
    case 400:
      return 13;
    case 401:
      return 16;
    case 403:
      return 7;
    case 404:
      return 12;
    case 429:
    case 502:
    case 503:
    case 504:
      return 14;
    default:
      return 2;
  }
}

export interface RenderedReply {
  status: number;
  headers: HeaderMap;
  /** Empty for gRPC: the message travels in `grpc-message`. */
  body: Buffer;
}

export function renderLocalReply(reply: LocalReply, grpc: boolean, requestId?: string): RenderedReply {
  const headers: HeaderMap = Object.create(null) as HeaderMap;
  for (const [k, v] of Object.entries(reply.headers ?? {})) headers[k] = [...v];
  if (reply.code !== undefined) headers['x-weft-error'] = [reply.code];
  if (requestId !== undefined) headers['x-request-id'] = [requestId];
  if (grpc && reply.code !== undefined) {
    headers['content-type'] = ['application/grpc'];
    headers['grpc-status'] = [String(grpcStatusFor(reply))];
    headers['grpc-message'] = [encodeURIComponent(reply.body.trimEnd())];
    return { status: 200, headers, body: Buffer.alloc(0) };
  }
  const body = Buffer.from(reply.body);
  if (body.length > 0 && headers['content-type'] === undefined)
    headers['content-type'] = ['text/plain; charset=utf-8'];
  headers['content-length'] = [String(body.length)];
  return { status: reply.status, headers, body };
}
