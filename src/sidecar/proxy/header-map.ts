// One representation of HTTP header fields inside the proxy, whatever codec they came from:
// lower-case names, every value kept separately (so `set-cookie` and repeated fields survive
// a hop), pseudo-headers carried outside the map. Conversions to and from Node's shapes.

import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

export type HeaderMap = Record<string, string[]>;

/** From Node's HTTP/2 header object, dropping pseudo-headers (`:path` etc.). */
export function fromHttp2Headers(headers: IncomingHttpHeaders): HeaderMap {
  const out: HeaderMap = Object.create(null) as HeaderMap;
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || value === undefined) continue;
    out[name] = Array.isArray(value) ? [...value] : [String(value)];
  }
  return out;
}

/** From `headersDistinct`/`trailersDistinct` of an HTTP/1.1 message (already lower-case). */
export function fromDistinct(headers: NodeJS.Dict<string[]>): HeaderMap {
  const out: HeaderMap = Object.create(null) as HeaderMap;
  for (const [name, values] of Object.entries(headers)) if (values) out[name] = [...values];
  return out;
}

/** For Node's writers: a single value as a string (HTTP/2 rejects arrays on single-value fields). */
export function toOutgoing(headers: HeaderMap): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, values] of Object.entries(headers)) {
    if (values.length === 0) continue;
    out[name] = values.length === 1 ? values[0] : values;
  }
  return out;
}

/** All values joined by `,` — how Envoy matches a repeated header. */
export function headerValue(headers: HeaderMap, name: string): string | undefined {
  const v = headers[name];
  return v === undefined || v.length === 0 ? undefined : v.join(',');
}

export function isEmpty(headers: NodeJS.Dict<unknown> | undefined): boolean {
  return headers === undefined || Object.keys(headers).length === 0;
}
