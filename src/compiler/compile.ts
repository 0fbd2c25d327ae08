// The compiler: a pure function from the mesh model and the requesting proxy to the Envoy v3
// resources that proxy should hold. No I/O, no clock, no randomness: the same input gives the
// same output, which golden files pin. The ADS server only diffs and ships what this returns.
//
// Per service port it emits: one EDS Cluster and its ClusterLoadAssignment, one
// RouteConfiguration (the attached HTTPRoute/GRPCRoute/TrafficSplit rules, or a default route to
// the service itself), and, for proxyless gRPC clients, API listeners under every name the
// service can be dialled by (see names.ts).

import type {
  MeshModel,
  MeshService,
  HeaderEdit,
  RouteBinding,
  RouteFilters,
  RouteMatch,
  ServicePort,
  StringMatch,
  WeightedBackend,
} from '../registry/model.js';
import { serviceKey } from '../registry/model.js';
import { TypeUrl, type ResourceSet } from '../xds/types.js';
import {
  BLACKHOLE_CLUSTER,
  clusterFor,
  clusterName,
  listenerNames,
  portKey,
  routeConfigName,
} from './names.js';
import { orderMatches } from './route-order.js';
import { expectedIdentities, outboundSni, upstreamTls } from './mtls.js';
import { DEFAULT_PATH_NORMALIZATION } from './path-normalization.js';
import { sidecarResources } from './sidecar-listeners.js';
import {
  ADS_SOURCE,
  HCM_TYPE,
  ROUTER_TYPE,
  durationMs,
  edsCluster,
  loadAssignment,
} from './envoy-fragments.js';

/** What the compiler needs to know about the proxy asking. */
export interface NodeView {
  /** The proxy's namespace: short service names resolve in it. */
  namespace: string;
  /**
   * A proxyless gRPC client rather than a proxy. gRPC cannot follow HTTP redirects and rejects
   * a RouteConfiguration holding one, so redirect routes are left out of what it gets.
   */
  proxyless?: boolean;
  /** Set for a Weft sidecar (or an Envoy in its place): it gets real socket listeners. */
  sidecar?: SidecarView;
  /**
   * The mesh's trust domain. With it, a sidecar node gets mTLS (see mtls.ts): the SPIFFE IDs
   * its clusters expect are built from it. Proxyless nodes never get transport sockets.
   */
  trustDomain?: string;
}

/** What a sidecar says about itself in its node metadata (see sidecar-listeners.ts). */
export interface SidecarView {
  /** Where the app sends its outbound requests (HTTP proxy semantics). */
  outbound: { host: string; port: number };
  /**
   * Where mesh traffic for this workload arrives, and the app port it goes on to. Absent for a
   * client-only workload (a batch job): it gets no inbound listener.
   */
  inbound?: { host: string; port: number; appPort: number; protocol: ServicePort['protocol'] };
  /** Opaque TCP upstreams, each on a local port of its own: `service[.ns]:port` → localPort. */
  tcpUpstreams: Array<{ service: string; port: number; localPort: number }>;
  /**
   * `namespace/name` of the Workload this sidecar fronts: the Services selecting it decide which
   * authorization policies its inbound listener enforces. Absent: none.
   */
  workload?: string;
}

export function compile(model: MeshModel, node: NodeView): ResourceSet {
  const listeners = new Map<string, object>();
  const routes = new Map<string, object>();
  const clusters = new Map<string, object>();
  const assignments = new Map<string, object>();

  const services = new Map(model.services.map((s) => [serviceKey(s.namespace, s.name), s]));
  const bindingsByParent = groupBindings(model.routes);
  let needsBlackhole = false;
  /** Per service port, the routes and the names it is reached by (for sidecar virtual hosts). */
  const hosts: Array<{ name: string; domains: string[]; routes: object[] }> = [];

  const mtls = node.sidecar !== undefined && node.trustDomain !== undefined;
  for (const svc of model.services) {
    for (const port of svc.ports) {
      const cluster = clusterName(svc.namespace, svc.name, portKey(svc, port));
      const expected = mtls ? expectedIdentities(node.trustDomain!, port.endpoints) : [];
      clusters.set(cluster, {
        ...edsCluster(cluster, port),
        ...(expected.length > 0
          ? upstreamTls(outboundSni(svc.namespace, svc.name, port.port), expected)
          : {}),
      });
      assignments.set(cluster, loadAssignment(cluster, port.endpoints, expected.length > 0));
    }
  }

  for (const svc of model.services) {
    for (const port of svc.ports) {
      const rcName = routeConfigName(svc.namespace, svc.name, port.port);
      const bindings = (bindingsByParent.get(serviceKey(svc.namespace, svc.name)) ?? []).filter(
        (b) => b.parent.port === undefined || b.parent.port === port.port,
      );
      const built = buildRoutes(svc, port, bindings, services, node);
      needsBlackhole ||= built.usesBlackhole;
      // A backend that does not exist yet still gets a cluster (with no endpoints): calls fail
      // closed now and start working as soon as the service appears, with no route change.
      for (const missing of built.missingClusters) {
        if (!clusters.has(missing.name)) {
          clusters.set(missing.name, edsCluster(missing.name, { protocol: missing.protocol }));
          assignments.set(missing.name, loadAssignment(missing.name, []));
        }
      }
      if (node.sidecar) {
        // Opaque TCP ports are reached through their own local listeners, not by Host header.
        if (port.protocol === 'TCP') continue;
        const domains = listenerNames(svc, node.namespace)
          .filter((n) => n.port === port.port)
          .map((n) => n.name);
        hosts.push({ name: rcName, domains, routes: built.routes });
      } else {
        routes.set(rcName, {
          name: rcName,
          virtual_hosts: [{ name: rcName, domains: ['*'], routes: built.routes }],
        });
      }
    }
    if (!node.sidecar) {
      for (const { name, port } of listenerNames(svc, node.namespace)) {
        listeners.set(name, apiListener(name, routeConfigName(svc.namespace, svc.name, port)));
      }
    }
  }

  if (node.sidecar) {
    const own = sidecarResources(
      node.sidecar,
      node.namespace,
      hosts,
      services,
      model.authorization ?? [],
      node.trustDomain === undefined ? undefined : (model.mtlsMode ?? 'STRICT'),
      model.pathNormalization ?? DEFAULT_PATH_NORMALIZATION,
    );
    for (const [name, l] of own.listeners) listeners.set(name, l);
    for (const [name, r] of own.routes) routes.set(name, r);
    for (const [name, c] of own.clusters) clusters.set(name, c);
    for (const [name, missing] of own.missingClusters) {
      if (!clusters.has(name)) {
        clusters.set(name, edsCluster(name, { protocol: missing }));
        assignments.set(name, loadAssignment(name, []));
      }
    }
  }

  if (needsBlackhole) {
    clusters.set(BLACKHOLE_CLUSTER, edsCluster(BLACKHOLE_CLUSTER, { protocol: 'HTTP' }));
    assignments.set(BLACKHOLE_CLUSTER, loadAssignment(BLACKHOLE_CLUSTER, []));
  }

  return new Map([
    [TypeUrl.Listener, sortByName(listeners)],
    [TypeUrl.RouteConfiguration, sortByName(routes)],
    [TypeUrl.Cluster, sortByName(clusters)],
    [TypeUrl.ClusterLoadAssignment, sortByName(assignments)],
  ]);
}

function groupBindings(bindings: RouteBinding[]): Map<string, RouteBinding[]> {
  const out = new Map<string, RouteBinding[]>();
  for (const b of bindings) {
    const key = serviceKey(b.parent.namespace, b.parent.name);
    const list = out.get(key);
    if (list) list.push(b);
    else out.set(key, [b]);
  }
  return out;
}

function sortByName(m: Map<string, object>): Map<string, object> {
  return new Map([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function apiListener(name: string, routeConfig: string): object {
  return {
    name,
    api_listener: {
      api_listener: {
        '@type': HCM_TYPE,
        stat_prefix: name,
        rds: { route_config_name: routeConfig, config_source: ADS_SOURCE },
        http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } }],
      },
    },
  };
}

interface BuiltRoutes {
  routes: object[];
  usesBlackhole: boolean;
  missingClusters: Array<{ name: string; protocol: ServicePort['protocol'] }>;
}

function buildRoutes(
  svc: MeshService,
  port: ServicePort,
  bindings: RouteBinding[],
  services: Map<string, MeshService>,
  node: NodeView,
): BuiltRoutes {
  const out: BuiltRoutes = { routes: [], usesBlackhole: false, missingClusters: [] };
  if (bindings.length === 0) {
    // No route attached: everything goes to the service itself (Kubernetes semantics).
    out.routes.push({
      name: 'default',
      match: { prefix: '/' },
      route: { cluster: clusterName(svc.namespace, svc.name, portKey(svc, port)), timeout: durationMs(0) },
    });
    return out;
  }
  // Once a route attaches, only its matches are served; anything else has no route (GAMMA).
  for (const m of orderMatches(bindings)) {
    const filters = m.rule.filters ?? {};
    if (filters.redirect && node.proxyless) continue;
    const routeName = `${m.binding.source.kind.toLowerCase()}/${m.binding.source.namespace}/${m.binding.source.name}/rule/${m.ruleIndex}/match/${m.matchIndex}`;
    const rewritesPrefix = [filters.rewrite?.path, filters.redirect?.path].some(
      (p) => p?.type === 'ReplacePrefixMatch',
    );
    for (const em of envoyMatches(m.match, rewritesPrefix)) {
      const route: Record<string, unknown> = { name: routeName, match: em.match };
      if (filters.redirect) {
        route.redirect = redirectAction(filters.redirect, em);
      } else {
        const action = routeAction(m.rule.backends, port, services, out);
        // Always explicit: Envoy's default route timeout is 15 s, which would cut streams and
        // long requests; Gateway API's default is none (0).
        action.timeout = durationMs(m.rule.timeoutMs ?? 0);
        if (filters.rewrite?.hostname) action.host_rewrite_literal = filters.rewrite.hostname;
        if (filters.rewrite?.path) Object.assign(action, pathRewrite(filters.rewrite.path, em));
        if (filters.mirrors) {
          action.request_mirror_policies = filters.mirrors.map((mirror) => ({
            cluster: backendCluster({ ...mirror, weight: 1 }, port, services, out),
            runtime_fraction: { default_value: millionths(mirror.percent) },
          }));
        }
        route.route = action;
      }
      Object.assign(route, headerEdits(filters));
      out.routes.push(route);
    }
  }
  return out;
}

function headerOptions(edit: HeaderEdit): object[] {
  return [
    ...edit.set.map((h) => ({
      header: { key: h.name.toLowerCase(), value: h.value },
      append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
    })),
    ...edit.add.map((h) => ({
      header: { key: h.name.toLowerCase(), value: h.value },
      append_action: 'APPEND_IF_EXISTS_OR_ADD',
    })),
  ];
}

function headerEdits(filters: RouteFilters): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const req = filters.requestHeaders;
  const res = filters.responseHeaders;
  if (req && headerOptions(req).length > 0) out.request_headers_to_add = headerOptions(req);
  if (req && req.remove.length > 0) out.request_headers_to_remove = req.remove.map((h) => h.toLowerCase());
  if (res && headerOptions(res).length > 0) out.response_headers_to_add = headerOptions(res);
  if (res && res.remove.length > 0) out.response_headers_to_remove = res.remove.map((h) => h.toLowerCase());
  return out;
}

function millionths(percent: number): object {
  return { numerator: Math.round(percent * 10_000), denominator: 'MILLION' };
}

/**
 * ReplacePrefixMatch rewrites the matched prefix. A Gateway API prefix `/foo` is compiled as an
 * exact `/foo` plus a prefix `/foo/` (see envoyMatches), so the replacement is fitted to each:
 * `/foo` → `/bar` and `/foo/x` → `/bar/x` (or `/x` when the replacement is `/`).
 */
function prefixReplacement(replacement: string, em: EnvoyMatch): string {
  if (em.kind === 'exact') return replacement === '' ? '/' : replacement;
  return replacement.endsWith('/') ? replacement : `${replacement}/`;
}

function pathRewrite(path: { type: string; value: string }, em: EnvoyMatch): Record<string, unknown> {
  if (path.type === 'ReplaceFullPath') {
    return { regex_rewrite: { pattern: { regex: '^.*$' }, substitution: path.value } };
  }
  return { prefix_rewrite: prefixReplacement(path.value, em) };
}

function redirectAction(r: NonNullable<RouteFilters['redirect']>, em: EnvoyMatch): Record<string, unknown> {
  const out: Record<string, unknown> = {
    response_code: r.statusCode === 301 ? 'MOVED_PERMANENTLY' : 'FOUND',
  };
  if (r.scheme) out.scheme_redirect = r.scheme;
  if (r.hostname) out.host_redirect = r.hostname;
  if (r.port !== undefined) out.port_redirect = r.port;
  if (r.path?.type === 'ReplaceFullPath') out.path_redirect = r.path.value;
  if (r.path?.type === 'ReplacePrefixMatch') out.prefix_rewrite = prefixReplacement(r.path.value, em);
  return out;
}

function routeAction(
  backends: WeightedBackend[],
  parentPort: ServicePort,
  services: Map<string, MeshService>,
  out: BuiltRoutes,
): Record<string, unknown> {
  const live = backends.filter((b) => b.weight > 0);
  if (live.length === 0) {
    // Gateway API: a rule whose backends all have weight 0 must fail its requests.
    out.usesBlackhole = true;
    return { cluster: BLACKHOLE_CLUSTER };
  }
  const named = live.map((b) => ({ name: backendCluster(b, parentPort, services, out), weight: b.weight }));
  if (named.length === 1) return { cluster: named[0]!.name };
  return {
    weighted_clusters: { clusters: named.map((c) => ({ name: c.name, weight: { value: c.weight } })) },
  };
}

function backendCluster(
  b: WeightedBackend,
  parentPort: ServicePort,
  services: Map<string, MeshService>,
  out: BuiltRoutes,
): string {
  const target = services.get(serviceKey(b.namespace, b.name));
  let port = b.port;
  if (port === undefined) {
    // Same port as the request when the backend has it, else the backend's only port.
    port = target?.ports.some((p) => p.port === parentPort.port)
      ? parentPort.port
      : target?.ports.length === 1
        ? target.ports[0]!.port
        : parentPort.port;
  }
  const name = clusterFor(target, b.namespace, b.name, port);
  if (!target?.ports.some((p) => p.port === port)) {
    out.missingClusters.push({ name, protocol: parentPort.protocol });
  }
  return name;
}

interface EnvoyMatch {
  match: object;
  /** What the path part is: rewrites of a matched prefix depend on it. */
  kind: 'exact' | 'prefix' | 'regex';
}

/** One Gateway API match becomes one or two Envoy matches (a PathPrefix needs two, see below). */
function envoyMatches(m: RouteMatch, rewritesPrefix: boolean): EnvoyMatch[] {
  const headers: object[] = m.headers.map(headerMatcher);
  if (m.method !== undefined) headers.push({ name: ':method', string_match: { exact: m.method } });
  const extra: Record<string, unknown> = {};
  if (headers.length > 0) extra.headers = headers;
  if (m.queryParams.length > 0) extra.query_parameters = m.queryParams.map(queryMatcher);

  const path = m.path ?? { type: 'PathPrefix', value: '/' };
  switch (path.type) {
    case 'Exact':
      return [{ match: { path: path.value, ...extra }, kind: 'exact' }];
    case 'RegularExpression':
      return [{ match: { safe_regex: { regex: wholeValue(path.value) }, ...extra }, kind: 'regex' }];
    case 'PathPrefix': {
      // Gateway API prefixes match whole path segments: `/foo` matches `/foo` and `/foo/bar`,
      // never `/foobar`. Envoy's plain `prefix` is a string prefix, and proxyless gRPC does not
      // support `path_separated_prefix`, so the segment rule is spelt as an exact match plus a
      // prefix ending in `/`, which every xDS client understands. `/` itself is one prefix,
      // unless a prefix rewrite needs `/` alone told apart (`/` → `/v2`, `/a` → `/v2/a`).
      const base = path.value.replace(/\/+$/, '');
      if (base === '' && !rewritesPrefix) return [{ match: { prefix: '/', ...extra }, kind: 'prefix' }];
      return [
        { match: { path: base === '' ? '/' : base, ...extra }, kind: 'exact' },
        { match: { prefix: `${base}/`, ...extra }, kind: 'prefix' },
      ];
    }
  }
}

/**
 * Gateway API regexes match the whole value. Envoy anchors a safe_regex itself, but some xDS
 * clients (grpc-js-xds) anchor by writing `^pattern$`, which lets a top-level alternation
 * (`/a|/b`) escape the anchors; a non-capturing group keeps it whole for every reader.
 */
function wholeValue(regex: string): string {
  return `(?:${regex})`;
}

function headerMatcher(h: StringMatch): object {
  return h.type === 'Exact'
    ? { name: h.name.toLowerCase(), string_match: { exact: h.value } }
    : { name: h.name.toLowerCase(), string_match: { safe_regex: { regex: wholeValue(h.value) } } };
}

function queryMatcher(q: StringMatch): object {
  return q.type === 'Exact'
    ? { name: q.name, string_match: { exact: q.value } }
    : { name: q.name, string_match: { safe_regex: { regex: wholeValue(q.value) } } };
}
