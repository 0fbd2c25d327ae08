// Header rewriting a proxy owes each hop: removing connection-scoped fields (RFC 9110 §7.6.1),
// the forwarding headers (`x-forwarded-for`, `x-forwarded-proto`), a request id, the route's
// header mutations, path and host rewrites, and redirect targets. Pure functions on a HeaderMap.

import { randomUUID } from 'node:crypto';
import type { ForwardAction, HeaderValueOption, RedirectAction, RouteMatch } from '../runtime-config.js';
import type { HeaderMap } from './header-map.js';
import { splitAuthority } from './router.js';

// Fields that describe one connection, never the message: Keep-Alive and Proxy-Connection are
// legacy but still sent; HTTP2-Settings belongs to the h2c upgrade dance. Proxy-Authorization
// stays: a mesh client may address credentials to a proxy further on.
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
];

export interface StripOptions {
  /**
   * Keep `te: trailers`: gRPC requires it on HTTP/2 and it is the one TE value HTTP/2 allows.
   * Other TE codings are dropped: they were negotiated for the client's connection only.
   */
  keepTeTrailers: boolean;
  /** Keep `upgrade` (and `connection: upgrade`) because this request is being tunnelled. */
  keepUpgrade: boolean;
}

/** Removes hop-by-hop fields, including every field the `Connection` header names. */
export function stripHopByHop(headers: HeaderMap, opts: StripOptions): void {
  const connection = headers['connection'];
  const upgrade = headers['upgrade'];
  const te = headers['te'];
  if (connection !== undefined)
    for (const v of connection)
      for (const token of v.split(',')) {
        const t = token.trim().toLowerCase();
        if (t !== '') delete headers[t];
      }
  // Most messages carry none of these: looking is cheaper than deleting what is not there.
  for (const name of HOP_BY_HOP) if (headers[name] !== undefined) delete headers[name];
  if (
    opts.keepTeTrailers &&
    te?.some((v) => v.split(',').some((t) => t.trim().toLowerCase() === 'trailers'))
  ) {
    headers['te'] = ['trailers'];
  }
  if (opts.keepUpgrade && upgrade !== undefined) {
    headers['upgrade'] = upgrade;
    headers['connection'] = ['upgrade'];
  }
}

/** Appends the client's address, keeping what earlier hops recorded. */
export function appendForwardedFor(headers: HeaderMap, clientAddress: string): void {
  const prior = headers['x-forwarded-for'];
  headers['x-forwarded-for'] = [
    prior && prior.length > 0 ? `${prior.join(', ')}, ${clientAddress}` : clientAddress,
  ];
}

export function setForwardedProto(headers: HeaderMap, scheme: string): void {
  headers['x-forwarded-proto'] = [scheme];
}

/** Keeps the caller's `x-request-id` so one id follows a request across hops; adds one if absent. */
export function ensureRequestId(headers: HeaderMap): string {
  const existing = headers['x-request-id']?.[0];
  if (existing !== undefined && existing !== '') return existing;
  const id = randomUUID();
  headers['x-request-id'] = [id];
  return id;
}

/** Removals first, then additions, so a route can replace a header by removing and adding it. */
export function applyHeaderMutations(headers: HeaderMap, add: HeaderValueOption[], remove: string[]): void {
  for (const name of remove) delete headers[name.toLowerCase()];
  for (const opt of add) {
    const name = opt.name.toLowerCase();
    const current = headers[name];
    if (opt.action === 'append') headers[name] = current ? [...current, opt.value] : [opt.value];
    else if (opt.action === 'overwrite' || current === undefined) headers[name] = [opt.value];
  }
}

function splitQuery(path: string): [string, string] {
  const q = path.indexOf('?');
  return q < 0 ? [path, ''] : [path.slice(0, q), path.slice(q)];
}

/**
 * The path sent upstream. A prefix rewrite replaces the matched prefix (only meaningful for a
 * prefix match, as in Envoy); a regex rewrite replaces the whole path when it matches. The
 * query string is kept either way.
 */
export function rewritePath(path: string, match: RouteMatch, action: ForwardAction): string {
  const [pathOnly, query] = splitQuery(path);
  if (action.regexRewrite) {
    const { pattern, substitution } = action.regexRewrite;
    pattern.lastIndex = 0;
    return pathOnly.replace(pattern, substitution) + query;
  }
  if (action.prefixRewrite !== undefined && 'prefix' in match.path) {
    return replacePrefix(pathOnly, match.path.prefix, action.prefixRewrite) + query;
  }
  return path;
}

function replacePrefix(pathOnly: string, prefix: string, replacement: string): string {
  let rest = pathOnly.slice(prefix.length);
  // `/api` → `/` on `/api/x` must give `/x`, not `//x` (Gateway API ReplacePrefixMatch).
  if (replacement.endsWith('/') && rest.startsWith('/')) rest = rest.slice(1);
  if (replacement === '' && !rest.startsWith('/')) return '/' + rest;
  return replacement + rest;
}

/**
 * The `Location` of a redirect; unset parts are taken from the request, the query is kept.
 * Assembled from pieces, never parsed: the authority was validated when the request arrived,
 * and a parser here could only throw on the hot path of a route the config asked for.
 */
export function redirectLocation(
  action: RedirectAction,
  req: { scheme: string; authority: string; path: string },
  match: RouteMatch,
): string {
  const scheme = action.scheme ?? req.scheme;
  const authority = splitAuthority(req.authority);
  const host = action.host ?? authority.host;
  const defaultPort = scheme === 'https' ? '443' : '80';
  let port =
    action.port !== undefined
      ? String(action.port)
      : action.scheme !== undefined
        ? ''
        : (authority.port ?? '');
  if (port === defaultPort) port = '';
  const [pathOnly, query] = splitQuery(req.path);
  let path = pathOnly;
  if (action.path !== undefined) path = action.path;
  else if (action.prefixRewrite !== undefined && 'prefix' in match.path) {
    path = replacePrefix(pathOnly, match.path.prefix, action.prefixRewrite);
  }
  return `${scheme}://${host}${port ? `:${port}` : ''}${path}${query}`;
}
