// RouteConfiguration → RouteTable: virtual hosts by domain, routes in order, each forwarding
// (one or weighted clusters), redirecting or answering directly, with header edits. Used for
// RDS resources and for route configs inlined in a listener's HttpConnectionManager.
import type {
  DirectAction,
  ForwardAction,
  HeaderMatch,
  HeaderMutations,
  HeaderValueOption,
  QueryMatch,
  RedirectAction,
  Route,
  RouteMatch,
  RouteTable,
  VirtualHost,
} from '../runtime-config.js';
import {
  REGEX_MATCHER,
  STRING_MATCHER,
  compileRe2,
  durationMs,
  re2Substitution,
  stringMatcher,
  wrapped,
} from './common.js';
import { at, type ProblemSink } from './problems.js';
import {
  BOOL_VALUE,
  DURATION,
  UINT32_VALUE,
  bool,
  enumOf,
  list,
  message,
  str,
  uint,
  type MessageSpec,
} from './subset.js';

export const HEADER_MATCHER: MessageSpec = {
  fields: {
    name: str,
    string_match: message(STRING_MATCHER),
    exact_match: str,
    safe_regex_match: message(REGEX_MATCHER),
    present_match: bool,
    prefix_match: str,
    suffix_match: str,
    contains_match: str,
    invert_match: bool,
  },
  required: ['name'],
  oneOf: [
    {
      fields: [
        'string_match',
        'exact_match',
        'safe_regex_match',
        'present_match',
        'prefix_match',
        'suffix_match',
        'contains_match',
      ],
    },
  ],
};

const QUERY_PARAMETER_MATCHER: MessageSpec = {
  fields: { name: str, string_match: message(STRING_MATCHER), present_match: bool },
  required: ['name'],
  oneOf: [{ fields: ['string_match', 'present_match'] }],
};

const ROUTE_MATCH: MessageSpec = {
  fields: {
    prefix: str,
    path: str,
    safe_regex: message(REGEX_MATCHER),
    case_sensitive: message(BOOL_VALUE),
    headers: list(message(HEADER_MATCHER)),
    query_parameters: list(message(QUERY_PARAMETER_MATCHER)),
  },
  oneOf: [{ fields: ['prefix', 'path', 'safe_regex'], required: true }],
};

const FRACTIONAL_PERCENT: MessageSpec = {
  fields: { numerator: uint, denominator: enumOf('HUNDRED', 'TEN_THOUSAND', 'MILLION') },
};

const ROUTE_ACTION: MessageSpec = {
  fields: {
    cluster: str,
    weighted_clusters: message({
      fields: {
        clusters: list(message({ fields: { name: str, weight: message(UINT32_VALUE) }, required: ['name'] })),
      },
    }),
    timeout: message(DURATION),
    prefix_rewrite: str,
    regex_rewrite: message({
      fields: { pattern: message(REGEX_MATCHER), substitution: str },
      required: ['pattern'],
    }),
    host_rewrite_literal: str,
    request_mirror_policies: list(
      message({
        fields: {
          cluster: str,
          runtime_fraction: message({ fields: { default_value: message(FRACTIONAL_PERCENT) } }),
        },
        required: ['cluster'],
      }),
    ),
  },
  oneOf: [
    { fields: ['cluster', 'weighted_clusters'], required: true },
    { fields: ['prefix_rewrite', 'regex_rewrite'] },
  ],
};

const REDIRECT_ACTION: MessageSpec = {
  fields: {
    scheme_redirect: str,
    https_redirect: bool,
    host_redirect: str,
    port_redirect: uint,
    path_redirect: str,
    prefix_rewrite: str,
    response_code: enumOf(
      'MOVED_PERMANENTLY',
      'FOUND',
      'SEE_OTHER',
      'TEMPORARY_REDIRECT',
      'PERMANENT_REDIRECT',
    ),
  },
  oneOf: [{ fields: ['scheme_redirect', 'https_redirect'] }, { fields: ['path_redirect', 'prefix_rewrite'] }],
};

const DIRECT_RESPONSE_ACTION: MessageSpec = {
  fields: { status: uint, body: message({ fields: { inline_string: str }, required: ['inline_string'] }) },
  required: ['status'],
};

const HEADER_VALUE_OPTION: MessageSpec = {
  fields: {
    header: message({ fields: { key: str, value: str }, required: ['key'] }),
    append_action: enumOf('APPEND_IF_EXISTS_OR_ADD', 'ADD_IF_ABSENT', 'OVERWRITE_IF_EXISTS_OR_ADD'),
    append: message(BOOL_VALUE),
  },
  required: ['header'],
};

const ROUTE: MessageSpec = {
  fields: {
    name: str,
    match: message(ROUTE_MATCH),
    route: message(ROUTE_ACTION),
    redirect: message(REDIRECT_ACTION),
    direct_response: message(DIRECT_RESPONSE_ACTION),
    request_headers_to_add: list(message(HEADER_VALUE_OPTION)),
    request_headers_to_remove: list(str),
    response_headers_to_add: list(message(HEADER_VALUE_OPTION)),
    response_headers_to_remove: list(str),
  },
  required: ['match'],
  oneOf: [{ fields: ['route', 'redirect', 'direct_response'], required: true }],
};

const VIRTUAL_HOST: MessageSpec = {
  fields: { name: str, domains: list(str), routes: list(message(ROUTE)) },
  required: ['name'],
};

export const ROUTE_CONFIGURATION: MessageSpec = {
  fields: { name: str, virtual_hosts: list(message(VIRTUAL_HOST)) },
};

type Obj = Record<string, unknown>;
const arr = (v: unknown): Obj[] => (Array.isArray(v) ? (v as Obj[]) : []);
const strs = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : []);

/** Envoy's default route timeout when a route sets none. */
export const DEFAULT_ROUTE_TIMEOUT_MS = 15_000;
const MAX_TOTAL_WEIGHT = 0xffffffff;

const REDIRECT_STATUS: Record<string, RedirectAction['status']> = {
  MOVED_PERMANENTLY: 301,
  FOUND: 302,
  SEE_OTHER: 303,
  TEMPORARY_REDIRECT: 307,
  PERMANENT_REDIRECT: 308,
};

const DENOMINATOR: Record<string, number> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

/**
 * A route configuration already checked against ROUTE_CONFIGURATION, as a RouteTable; problems
 * (regexes, weights, domains, header names) go to `sink` under `path`.
 */
export function translateRouteConfiguration(
  rc: Obj,
  name: string,
  path: string,
  sink: ProblemSink,
): RouteTable {
  const seenDomains = new Map<string, string>();
  const virtualHosts = arr(rc.virtual_hosts).map((vh, i) =>
    virtualHost(vh, at(at(path, 'virtual_hosts'), i), seenDomains, sink),
  );
  return { name, virtualHosts };
}

function virtualHost(vh: Obj, path: string, seen: Map<string, string>, sink: ProblemSink): VirtualHost {
  const name = vh.name as string;
  const domains = strs(vh.domains).map((d) => d.toLowerCase());
  if (domains.length === 0) sink.add(at(path, 'domains'), 'must list at least one domain');
  domains.forEach((d, i) => {
    const p = at(at(path, 'domains'), i);
    const star = d.indexOf('*');
    if (d === '') sink.add(p, 'must not be empty');
    // Envoy allows one wildcard, as the whole domain or at either end of it.
    else if (star >= 0 && d !== '*' && !(star === 0 && d.lastIndexOf('*') === 0) && star !== d.length - 1) {
      sink.add(
        p,
        `${JSON.stringify(d)}: a wildcard must be the whole domain, its first or its last character`,
      );
    } else if (d.indexOf('*') !== d.lastIndexOf('*')) {
      sink.add(p, `${JSON.stringify(d)}: only one wildcard is allowed`);
    }
    const other = seen.get(d);
    // Envoy refuses a route config where two virtual hosts claim one domain.
    if (other !== undefined)
      sink.add(p, `${JSON.stringify(d)} is already a domain of virtual host ${JSON.stringify(other)}`);
    else seen.set(d, name);
  });
  const routes = arr(vh.routes).map((r, i) => route(r, at(at(path, 'routes'), i), sink));
  return { name, domains, routes };
}

function route(r: Obj, path: string, sink: ProblemSink): Route {
  const match = routeMatch(r.match as Obj, at(path, 'match'), sink);
  let action: Route['action'];
  if (r.route !== undefined && r.route !== null) action = forward(r.route as Obj, at(path, 'route'), sink);
  else if (r.redirect !== undefined && r.redirect !== null)
    action = redirect(r.redirect as Obj, at(path, 'redirect'), sink);
  else action = direct(r.direct_response as Obj, at(path, 'direct_response'), sink);
  return {
    name: typeof r.name === 'string' ? r.name : '',
    match,
    action,
    headers: headerMutations(r, path, sink),
  };
}

function routeMatch(m: Obj, path: string, sink: ProblemSink): RouteMatch {
  let p: RouteMatch['path'];
  if (typeof m.prefix === 'string') p = { prefix: m.prefix };
  else if (typeof m.path === 'string') p = { exact: m.path };
  else {
    const re = compileRe2((m.safe_regex as Obj).regex as string, at(at(path, 'safe_regex'), 'regex'), sink);
    p = { regex: re ?? /$^/ };
  }
  const headers: HeaderMatch[] = arr(m.headers).map((h, i) =>
    headerMatch(h, at(at(path, 'headers'), i), sink),
  );
  const query: QueryMatch[] = arr(m.query_parameters).map((q, i) => {
    const qp = at(at(path, 'query_parameters'), i);
    const out: QueryMatch = { name: q.name as string };
    if (q.string_match !== undefined && q.string_match !== null) {
      const v = stringMatcher(q.string_match as Obj, at(qp, 'string_match'), sink);
      if (v !== undefined) out.value = v;
    }
    return out;
  });
  return { path: p, caseSensitive: wrapped<boolean>(m.case_sensitive, false) ?? true, headers, query };
}

export function headerMatch(h: Obj, path: string, sink: ProblemSink): HeaderMatch {
  const out: HeaderMatch = { name: (h.name as string).toLowerCase() };
  if (out.name === '') sink.add(at(path, 'name'), 'must not be empty');
  if (h.invert_match === true) out.invert = true;
  const set = (v: HeaderMatch['value']): void => {
    if (v !== undefined) out.value = v;
  };
  if (typeof h.exact_match === 'string') set({ exact: h.exact_match });
  else if (typeof h.prefix_match === 'string') set({ prefix: h.prefix_match });
  else if (typeof h.suffix_match === 'string') set({ suffix: h.suffix_match });
  else if (typeof h.contains_match === 'string') set({ contains: h.contains_match });
  else if (h.safe_regex_match !== undefined && h.safe_regex_match !== null) {
    const re = compileRe2(
      (h.safe_regex_match as Obj).regex as string,
      at(at(path, 'safe_regex_match'), 'regex'),
      sink,
    );
    if (re !== undefined) set({ regex: re });
  } else if (h.string_match !== undefined && h.string_match !== null) {
    set(stringMatcher(h.string_match as Obj, at(path, 'string_match'), sink));
  }
  // No value matcher (or present_match) means "present": Envoy's default for a bare name.
  return out;
}

function forward(a: Obj, path: string, sink: ProblemSink): ForwardAction {
  let clusters: ForwardAction['clusters'];
  if (typeof a.cluster === 'string') {
    if (a.cluster === '') sink.add(at(path, 'cluster'), 'must not be empty');
    clusters = [{ name: a.cluster, weight: 1 }];
  } else {
    const wc = a.weighted_clusters as Obj;
    const wpath = at(at(path, 'weighted_clusters'), 'clusters');
    clusters = arr(wc.clusters).map((c) => ({
      name: c.name as string,
      weight: wrapped<number>(c.weight, 0) ?? 0,
    }));
    if (clusters.length === 0) sink.add(wpath, 'must list at least one cluster');
    clusters.forEach((c, i) => {
      if (c.name === '') sink.add(at(at(wpath, i), 'name'), 'must not be empty');
    });
  }
  const totalWeight = clusters.reduce((s, c) => s + c.weight, 0);
  if (clusters.length > 0 && totalWeight === 0) {
    sink.add(at(at(path, 'weighted_clusters'), 'clusters'), 'total weight must be > 0');
  } else if (totalWeight > MAX_TOTAL_WEIGHT) {
    sink.add(
      at(at(path, 'weighted_clusters'), 'clusters'),
      `total weight ${totalWeight} exceeds ${MAX_TOTAL_WEIGHT}`,
    );
  }
  const out: ForwardAction = {
    kind: 'forward',
    clusters,
    totalWeight,
    timeoutMs:
      a.timeout === undefined || a.timeout === null ? DEFAULT_ROUTE_TIMEOUT_MS : durationMs(a.timeout),
    mirrors: arr(a.request_mirror_policies).map((m) => ({
      cluster: m.cluster as string,
      fraction: mirrorFraction(m),
    })),
  };
  if (typeof a.prefix_rewrite === 'string') out.prefixRewrite = a.prefix_rewrite;
  if (a.regex_rewrite !== undefined && a.regex_rewrite !== null) {
    const rr = a.regex_rewrite as Obj;
    const pattern = compileRe2(
      (rr.pattern as Obj).regex as string,
      at(at(at(path, 'regex_rewrite'), 'pattern'), 'regex'),
      sink,
      false,
    );
    if (pattern !== undefined) {
      out.regexRewrite = {
        pattern,
        substitution: re2Substitution((rr.substitution as string | undefined) ?? ''),
      };
    }
  }
  if (typeof a.host_rewrite_literal === 'string') out.hostRewrite = a.host_rewrite_literal;
  safeValue(a.host_rewrite_literal, at(path, 'host_rewrite_literal'), sink);
  safeValue(a.prefix_rewrite, at(path, 'prefix_rewrite'), sink);
  return out;
}

/** No runtime_fraction mirrors every request; a fraction above its denominator is all of them. */
function mirrorFraction(m: Obj): number {
  const rf = m.runtime_fraction as Obj | undefined;
  if (rf === undefined || rf === null) return 1;
  const dv = (rf.default_value as Obj | undefined) ?? {};
  const numerator = (dv.numerator as number | undefined) ?? 0;
  const denominator = DENOMINATOR[(dv.denominator as string | undefined) ?? 'HUNDRED'] ?? 100;
  return Math.min(1, numerator / denominator);
}

function redirect(r: Obj, path: string, sink: ProblemSink): RedirectAction {
  const out: RedirectAction = {
    kind: 'redirect',
    status: REDIRECT_STATUS[(r.response_code as string | undefined) ?? 'MOVED_PERMANENTLY'] ?? 301,
  };
  if (r.https_redirect === true) out.scheme = 'https';
  if (typeof r.scheme_redirect === 'string') out.scheme = r.scheme_redirect;
  if (typeof r.host_redirect === 'string') out.host = r.host_redirect;
  if (typeof r.port_redirect === 'number') {
    if (r.port_redirect > 65535) sink.add(at(path, 'port_redirect'), `${r.port_redirect} is not a port`);
    out.port = r.port_redirect;
  }
  if (typeof r.path_redirect === 'string') out.path = r.path_redirect;
  if (typeof r.prefix_rewrite === 'string') out.prefixRewrite = r.prefix_rewrite;
  for (const field of ['scheme_redirect', 'host_redirect', 'path_redirect', 'prefix_rewrite']) {
    safeValue(r[field], at(path, field), sink);
  }
  return out;
}

function direct(d: Obj, path: string, sink: ProblemSink): DirectAction {
  const status = d.status as number;
  if (status < 200 || status > 599) sink.add(at(path, 'status'), `${status} is not in [200, 599]`);
  const out: DirectAction = { kind: 'direct', status };
  const body = d.body as Obj | undefined;
  if (body !== undefined && body !== null) out.body = body.inline_string as string;
  return out;
}

function headerMutations(r: Obj, path: string, sink: ProblemSink): HeaderMutations {
  return {
    requestAdd: headerOptions(r.request_headers_to_add, at(path, 'request_headers_to_add'), sink),
    requestRemove: headerRemovals(r.request_headers_to_remove, at(path, 'request_headers_to_remove'), sink),
    responseAdd: headerOptions(r.response_headers_to_add, at(path, 'response_headers_to_add'), sink),
    responseRemove: headerRemovals(
      r.response_headers_to_remove,
      at(path, 'response_headers_to_remove'),
      sink,
    ),
  };
}

// RFC 9110 token characters for header names; field values must not contain CR, LF or NUL.
// Checked here so that a bad header is a NACK, not an exception on every request.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const UNSAFE_VALUE = /[\r\n\0]/;

/** A value that goes into a request head (header, Host, path): no CR, LF or NUL. */
function safeValue(value: unknown, path: string, sink: ProblemSink): void {
  if (typeof value === 'string' && UNSAFE_VALUE.test(value)) {
    sink.add(path, 'must not contain CR, LF or NUL (they would split the request or response head)');
  }
}

/** Envoy refuses to edit pseudo-headers and Host through these lists (host has its own rewrite). */
function editableHeader(name: string, path: string, sink: ProblemSink): boolean {
  if (name === '') sink.add(path, 'must not be empty');
  else if (!name.startsWith(':') && !HEADER_NAME.test(name))
    sink.add(path, `${JSON.stringify(name)} is not a valid header name (RFC 9110 token)`);
  else if (name.startsWith(':') || name === 'host')
    sink.add(path, `${JSON.stringify(name)} cannot be modified`);
  else return true;
  return false;
}

function headerOptions(v: unknown, path: string, sink: ProblemSink): HeaderValueOption[] {
  return arr(v).map((o, i) => {
    const p = at(path, i);
    const header = o.header as Obj;
    const name = (header.key as string).toLowerCase();
    editableHeader(name, at(at(p, 'header'), 'key'), sink);
    safeValue(header.value, at(at(p, 'header'), 'value'), sink);
    let action: HeaderValueOption['action'] = 'append';
    if (o.append !== undefined && o.append !== null) {
      if (o.append_action !== undefined && o.append_action !== null) {
        sink.add(p, 'only one of append, append_action may be set');
      }
      action = wrapped<boolean>(o.append, false) === true ? 'append' : 'overwrite';
    } else if (o.append_action === 'ADD_IF_ABSENT') action = 'addIfAbsent';
    else if (o.append_action === 'OVERWRITE_IF_EXISTS_OR_ADD') action = 'overwrite';
    return { name, value: (header.value as string | undefined) ?? '', action };
  });
}

function headerRemovals(v: unknown, path: string, sink: ProblemSink): string[] {
  return strs(v).map((name, i) => {
    const lower = name.toLowerCase();
    editableHeader(lower, at(path, i), sink);
    return lower;
  });
}
