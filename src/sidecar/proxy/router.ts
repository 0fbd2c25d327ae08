// Route selection, pure and synchronous: the virtual host for a request's authority (Envoy's
// domain precedence, with and without the port), then the first route whose match holds
// (path, case sensitivity, headers including pseudo-headers, query parameters), then a cluster
// by weight. No I/O, so it is unit-tested on its own and costs nothing to call per request.

import type {
  ForwardAction,
  HeaderMatch,
  QueryMatch,
  Route,
  RouteMatch,
  RouteTable,
  StringMatcher,
  VirtualHost,
} from '../runtime-config.js';
import { headerValue, type HeaderMap } from './header-map.js';

/** What route matching looks at. `path` is origin-form, query included. */
export interface MatchInput {
  method: string;
  authority: string;
  path: string;
  scheme: string;
  headers: HeaderMap;
}

interface CompiledTable {
  exact: Map<string, VirtualHost>;
  /** `*.suffix` patterns, longest first (Envoy: longer wildcard wins). */
  suffixes: Array<[string, VirtualHost]>;
  /** `prefix*` patterns, longest first. */
  prefixes: Array<[string, VirtualHost]>;
  star?: VirtualHost;
}

// Route tables are immutable per config, so one compiled index per table object is exact.
const compiled = new WeakMap<RouteTable, CompiledTable>();

function compile(table: RouteTable): CompiledTable {
  const c: CompiledTable = { exact: new Map(), suffixes: [], prefixes: [] };
  for (const vh of table.virtualHosts) {
    for (const raw of vh.domains) {
      const d = raw.toLowerCase();
      if (d === '*') c.star ??= vh;
      else if (d.startsWith('*')) c.suffixes.push([d.slice(1), vh]);
      else if (d.endsWith('*')) c.prefixes.push([d.slice(0, -1), vh]);
      else if (!c.exact.has(d)) c.exact.set(d, vh);
    }
  }
  c.suffixes.sort((a, b) => b[0].length - a[0].length);
  c.prefixes.sort((a, b) => b[0].length - a[0].length);
  return c;
}

function lookup(c: CompiledTable, host: string): VirtualHost | undefined {
  const exact = c.exact.get(host);
  if (exact) return exact;
  for (const [suffix, vh] of c.suffixes) if (host.length > suffix.length && host.endsWith(suffix)) return vh;
  for (const [prefix, vh] of c.prefixes)
    if (host.length > prefix.length && host.startsWith(prefix)) return vh;
  return undefined;
}

/** Splits `host[:port]` (IPv6 in brackets); the port is undefined when absent. */
export function splitAuthority(authority: string): { host: string; port?: string } {
  const a = authority.toLowerCase();
  if (a.startsWith('[')) {
    const end = a.indexOf(']');
    if (end > 0 && a[end + 1] === ':') return { host: a.slice(0, end + 1), port: a.slice(end + 2) };
    return { host: a };
  }
  const colon = a.lastIndexOf(':');
  if (colon > 0 && a.indexOf(':') === colon) return { host: a.slice(0, colon), port: a.slice(colon + 1) };
  return { host: a };
}

/**
 * The virtual host for an authority. A domain written with a port (`svc:8080`) matches only that
 * port; a domain without one matches the host on any port — so `Host: svc:8080` finds a virtual
 * host listing `svc`, as Envoy does with `strip_any_host_port`. The catch-all `*` comes last.
 */
export function selectVirtualHost(table: RouteTable, authority: string): VirtualHost | undefined {
  let c = compiled.get(table);
  if (!c) {
    c = compile(table);
    compiled.set(table, c);
  }
  const full = authority.toLowerCase();
  const found = lookup(c, full);
  if (found) return found;
  const { host, port } = splitAuthority(full);
  if (port !== undefined) {
    const byHost = lookup(c, host);
    if (byHost) return byHost;
  }
  return c.star;
}

export function matchString(m: StringMatcher, value: string): boolean {
  if ('regex' in m) return wholeMatch(m.regex, value);
  const v = m.ignoreCase ? value.toLowerCase() : value;
  if ('exact' in m) return v === (m.ignoreCase ? m.exact.toLowerCase() : m.exact);
  if ('prefix' in m) return v.startsWith(m.ignoreCase ? m.prefix.toLowerCase() : m.prefix);
  if ('suffix' in m) return v.endsWith(m.ignoreCase ? m.suffix.toLowerCase() : m.suffix);
  return v.includes(m.ignoreCase ? m.contains.toLowerCase() : m.contains);
}

// Config regexes match whole values; a stateful (g/y) regex would carry lastIndex between calls.
function wholeMatch(re: RegExp, value: string): boolean {
  re.lastIndex = 0;
  const m = re.exec(value);
  return m !== null && m.index === 0 && m[0].length === value.length;
}

function splitPath(path: string): { pathOnly: string; query: string } {
  const q = path.indexOf('?');
  return q < 0 ? { pathOnly: path, query: '' } : { pathOnly: path.slice(0, q), query: path.slice(q + 1) };
}

function matchPath(m: RouteMatch, pathOnly: string): boolean {
  const p = m.path;
  if ('regex' in p) return wholeMatch(p.regex, pathOnly);
  if ('exact' in p)
    return m.caseSensitive ? pathOnly === p.exact : pathOnly.toLowerCase() === p.exact.toLowerCase();
  return m.caseSensitive
    ? pathOnly.startsWith(p.prefix)
    : pathOnly.toLowerCase().startsWith(p.prefix.toLowerCase());
}

function headerFor(input: MatchInput, name: string): string | undefined {
  switch (name) {
    case ':method':
      return input.method;
    case ':path':
      return input.path;
    case ':authority':
      return input.authority;
    case ':scheme':
      return input.scheme;
    default:
      return headerValue(input.headers, name);
  }
}

export function matchHeader(h: HeaderMatch, input: MatchInput): boolean {
  const value = headerFor(input, h.name);
  const ok = value !== undefined && (h.value === undefined || matchString(h.value, value));
  return h.invert ? !ok : ok;
}

function matchQuery(q: QueryMatch, params: URLSearchParams): boolean {
  const value = params.get(q.name);
  if (value === null) return false;
  return q.value === undefined || matchString(q.value, value);
}

export function routeMatches(m: RouteMatch, input: MatchInput): boolean {
  const { pathOnly, query } = splitPath(input.path);
  if (!matchPath(m, pathOnly)) return false;
  for (const h of m.headers) if (!matchHeader(h, input)) return false;
  if (m.query.length > 0) {
    const params = new URLSearchParams(query);
    for (const q of m.query) if (!matchQuery(q, params)) return false;
  }
  return true;
}

/** First route in order whose match holds (routes are already in precedence order). */
export function selectRoute(vh: VirtualHost, input: MatchInput): Route | undefined {
  return vh.routes.find((r) => routeMatches(r.match, input));
}

/** A cluster name, drawn with probability weight / totalWeight. */
export function pickWeightedCluster(
  action: ForwardAction,
  random: () => number = Math.random,
): string | undefined {
  const [first] = action.clusters;
  if (action.clusters.length === 1 || first === undefined) return first?.name;
  const total =
    action.totalWeight > 0 ? action.totalWeight : action.clusters.reduce((s, c) => s + c.weight, 0);
  let r = random() * total;
  for (const c of action.clusters) {
    r -= c.weight;
    if (r < 0) return c.name;
  }
  return action.clusters[action.clusters.length - 1]?.name;
}
