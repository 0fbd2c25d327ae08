// Builds the mesh model from stored resources: which services exist (explicit Services, and the
// implicit ones that `app: X` workload labels create), their ports and endpoints, and every
// route kind (HTTPRoute, GRPCRoute, TrafficSplit) translated into one route binding shape.
// The input types are narrow structural views of the resource kinds, so this module reads only
// the fields it needs and the compiler never sees the user-facing kinds.

import { isDns1035Label } from '../resources/formats.js';
import { DEFAULT_PATH_NORMALIZATION } from '../resources/kinds/mesh-config.js';
import type {
  AuthorizationBinding,
  AuthzRule,
  Endpoint,
  HeaderEdit,
  PathModifier,
  RouteFilters,
  MeshModel,
  MeshService,
  MtlsMode,
  PathNormalizationMode,
  PathMatch,
  PortProtocol,
  RouteBinding,
  RouteMatch,
  RouteRule,
  ServicePort,
  StringMatch,
  WeightedBackend,
} from './model.js';
import { SIDECAR_ANNOTATION } from './model.js';

interface Meta {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
}

export interface WorkloadView {
  metadata: Meta;
  spec: {
    address: string;
    ports: Array<{ name?: string; port: number; protocol: PortProtocol }>;
    serviceAccount?: string;
  };
}

export interface ServiceView {
  metadata: Meta;
  spec: {
    selector?: Record<string, string>;
    ports: Array<{ name?: string; port: number; targetPort?: number | string; appProtocol?: string }>;
  };
}

interface ParentRefView {
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
}
interface BackendRefView {
  name: string;
  namespace?: string;
  port?: number;
  weight?: number;
}
interface HeaderModifierView {
  set?: Array<{ name: string; value: string }>;
  add?: Array<{ name: string; value: string }>;
  remove?: string[];
}
interface PathModifierView {
  type: PathModifier['type'];
  replaceFullPath?: string;
  replacePrefixMatch?: string;
}
export interface FilterView {
  type: string;
  requestHeaderModifier?: HeaderModifierView;
  responseHeaderModifier?: HeaderModifierView;
  requestMirror?: {
    backendRef: { name: string; namespace?: string; port?: number };
    percent?: number;
    fraction?: { numerator: number; denominator?: number };
  };
  requestRedirect?: {
    scheme?: string;
    hostname?: string;
    path?: PathModifierView;
    port?: number;
    statusCode?: number;
  };
  urlRewrite?: { hostname?: string; path?: PathModifierView };
}
interface StringMatchView {
  type?: 'Exact' | 'RegularExpression';
  name: string;
  value: string;
}

export interface HTTPRouteView {
  metadata: Meta;
  spec: {
    parentRefs?: ParentRefView[];
    rules?: Array<{
      matches?: Array<{
        path?: { type?: PathMatch['type']; value?: string };
        headers?: StringMatchView[];
        queryParams?: StringMatchView[];
        method?: string;
      }>;
      backendRefs?: BackendRefView[];
      timeouts?: { request?: string; backendRequest?: string };
      filters?: FilterView[];
    }>;
  };
}

export interface GRPCRouteView {
  metadata: Meta;
  spec: {
    parentRefs?: ParentRefView[];
    rules?: Array<{
      matches?: Array<{
        method?: { type?: 'Exact' | 'RegularExpression'; service?: string; method?: string };
        headers?: StringMatchView[];
      }>;
      backendRefs?: BackendRefView[];
      filters?: FilterView[];
    }>;
  };
}

export interface TrafficSplitView {
  metadata: Meta;
  spec: { service: string; backends: Array<{ service: string; weight: number }> };
}

export interface AuthorizationPolicyView {
  metadata: Meta;
  spec: { targetRef: { name: string }; action: 'ALLOW' | 'DENY'; rules: AuthzRule[] };
}

interface SmiIdentityView {
  name: string;
  namespace?: string;
}

export interface TrafficTargetView {
  metadata: Meta;
  spec: {
    destination: SmiIdentityView;
    sources: SmiIdentityView[];
    rules: Array<{ name: string; matches?: string[] }>;
  };
}

export interface HTTPRouteGroupView {
  metadata: Meta;
  spec: {
    matches: Array<{
      name: string;
      methods?: string[];
      pathRegex?: string;
      headers?: Record<string, string>;
    }>;
  };
}

export interface ModelInput {
  workloads: WorkloadView[];
  services: ServiceView[];
  httpRoutes: HTTPRouteView[];
  grpcRoutes: GRPCRouteView[];
  trafficSplits: TrafficSplitView[];
  authorizationPolicies?: AuthorizationPolicyView[];
  trafficTargets?: TrafficTargetView[];
  httpRouteGroups?: HTTPRouteGroupView[];
  meshConfig?: {
    spec: { mtls: { mode: MtlsMode }; pathNormalization?: { normalization: PathNormalizationMode } };
  };
}

export function buildModel(input: ModelInput): MeshModel {
  const services = new Map<string, MeshService>();
  for (const svc of implicitServices(input.workloads)) services.set(`${svc.namespace}/${svc.name}`, svc);
  // An explicit Service wins over the implicit one of the same name.
  for (const s of input.services) {
    const svc = explicitService(s, input.workloads);
    services.set(`${svc.namespace}/${svc.name}`, svc);
  }

  const routes: RouteBinding[] = [
    ...input.httpRoutes.flatMap(httpRouteBindings),
    ...input.grpcRoutes.flatMap(grpcRouteBindings),
    ...input.trafficSplits.map(trafficSplitBinding),
  ].sort(
    (a, b) =>
      compare(a.source.createdAt, b.source.createdAt) ||
      compare(`${a.source.namespace}/${a.source.name}`, `${b.source.namespace}/${b.source.name}`) ||
      compare(a.source.kind, b.source.kind),
  );

  const authorization: AuthorizationBinding[] = [
    ...(input.authorizationPolicies ?? []).map((p): AuthorizationBinding => ({
      source: { kind: 'AuthorizationPolicy', namespace: p.metadata.namespace, name: p.metadata.name },
      target: { namespace: p.metadata.namespace, name: p.spec.targetRef.name },
      action: p.spec.action,
      rules: structuredClone(p.spec.rules),
    })),
    ...(input.trafficTargets ?? []).map((t) => trafficTargetBinding(t, input.httpRouteGroups ?? [])),
  ].sort(
    (a, b) =>
      compare(a.source.kind, b.source.kind) ||
      compare(a.source.namespace, b.source.namespace) ||
      compare(a.source.name, b.source.name),
  );

  return {
    mtlsMode: input.meshConfig?.spec.mtls.mode ?? 'STRICT',
    pathNormalization: input.meshConfig?.spec.pathNormalization?.normalization ?? DEFAULT_PATH_NORMALIZATION,
    services: [...services.values()].sort(
      (a, b) => compare(a.namespace, b.namespace) || compare(a.name, b.name),
    ),
    routes,
    ...(authorization.length > 0 ? { authorization } : {}),
  };
}

/**
 * An SMI TrafficTarget as an ALLOW policy on its destination service account's workloads: its
 * sources may make the requests its HTTPRouteGroup matches describe. A group or match name
 * that does not exist allows nothing (fail closed); the target still turns on default deny.
 */
function trafficTargetBinding(t: TrafficTargetView, groups: HTTPRouteGroupView[]): AuthorizationBinding {
  const ns = t.metadata.namespace;
  const to: AuthzRule['to'] = [];
  let anyRequest = false;
  for (const rule of t.spec.rules) {
    const group = groups.find((g) => g.metadata.namespace === ns && g.metadata.name === rule.name);
    for (const m of group?.spec.matches ?? []) {
      if (rule.matches !== undefined && !rule.matches.includes(m.name)) continue;
      const op: NonNullable<AuthzRule['to']>[number] = {};
      if (m.methods !== undefined && !m.methods.includes('*')) op.methods = [...m.methods];
      if (m.pathRegex !== undefined) op.pathRegex = m.pathRegex;
      const headers = Object.entries(m.headers ?? {});
      if (headers.length > 0) op.headers = headers.map(([name, value]) => ({ name, value }));
      if (Object.keys(op).length === 0) anyRequest = true;
      else to.push(op);
    }
  }
  const from = [
    { serviceAccounts: t.spec.sources.map((s) => ({ namespace: s.namespace ?? ns, name: s.name })) },
  ];
  const rules: AuthzRule[] = anyRequest ? [{ from }] : to.length > 0 ? [{ from, to }] : [];
  return {
    source: { kind: 'TrafficTarget', namespace: ns, name: t.metadata.name },
    target: {
      namespace: t.spec.destination.namespace ?? ns,
      name: t.spec.destination.name,
      kind: 'ServiceAccount',
    },
    action: 'ALLOW',
    rules,
  };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function endpointOf(w: WorkloadView, port: number): Endpoint {
  return {
    address: w.spec.address,
    port,
    workload: `${w.metadata.namespace}/${w.metadata.name}`,
    serviceAccount: w.spec.serviceAccount ?? 'default',
    labels: { ...(w.metadata.labels ?? {}) },
    ...(w.metadata.annotations?.[SIDECAR_ANNOTATION] === 'true' ? { sidecar: true } : {}),
  };
}

/**
 * Sorted, and one per address:port: two Workloads can name the same address for a while (a
 * sidecar restarted on its port registers anew before the old registration's lease expires),
 * and xDS clients reject an assignment listing one address twice (grpc-js-xds NACKs it).
 */
function sortEndpoints(eps: Endpoint[]): Endpoint[] {
  eps.sort((a, b) => compare(a.workload, b.workload) || compare(a.address, b.address) || a.port - b.port);
  const seen = new Set<string>();
  return eps.filter((e) => {
    const key = `${e.address}|${e.port}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function implicitServices(workloads: WorkloadView[]): MeshService[] {
  const groups = new Map<string, WorkloadView[]>();
  for (const w of workloads) {
    const app = w.metadata.labels?.app;
    // The label becomes a service name and a DNS-style listener name (`app.ns`); a value that is
    // no DNS label (`foo.bar`) could collide with another namespace's service, so it makes none.
    if (!app || !isDns1035Label(app)) continue;
    const key = `${w.metadata.namespace}/${app}`;
    const list = groups.get(key);
    if (list) list.push(w);
    else groups.set(key, [w]);
  }
  const out: MeshService[] = [];
  for (const [key, members] of groups) {
    const [namespace, name] = key.split('/') as [string, string];
    // Instances of one app often listen on different port numbers (several on one host), so
    // ports are merged by name: every instance's `grpc` port is one service port, whose number
    // is the lowest among them. A port whose number is already a service port joins that one
    // whatever its name, so that one number never becomes two ports (and two clusters).
    const byName = new Map<string, ServicePort>();
    const byNumber = new Map<number, ServicePort>();
    const ports: ServicePort[] = [];
    for (const w of members) {
      for (const p of w.spec.ports) {
        let sp = byNumber.get(p.port) ?? (p.name ? byName.get(p.name) : undefined);
        if (!sp) {
          sp = { port: p.port, protocol: p.protocol, endpoints: [] };
          ports.push(sp);
        }
        if (p.name && !sp.name) sp.name = p.name;
        if (p.name && !byName.has(p.name)) byName.set(p.name, sp);
        byNumber.set(p.port, sp);
        sp.port = Math.min(sp.port, p.port);
        sp.endpoints.push(endpointOf(w, p.port));
      }
    }
    const sorted = ports.sort((a, b) => a.port - b.port);
    for (const p of sorted) p.endpoints = sortEndpoints(p.endpoints);
    out.push({ namespace, name, implicit: true, ports: sorted });
  }
  return out;
}

function selects(
  selector: Record<string, string> | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  // Kubernetes: a Service without a selector selects nothing (its endpoints are managed by hand).
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

const APP_PROTOCOLS: Record<string, PortProtocol> = {
  http: 'HTTP',
  http2: 'HTTP2',
  'kubernetes.io/h2c': 'HTTP2',
  h2c: 'HTTP2',
  grpc: 'GRPC',
  tcp: 'TCP',
};

function explicitService(s: ServiceView, workloads: WorkloadView[]): MeshService {
  const selected = workloads.filter(
    (w) => w.metadata.namespace === s.metadata.namespace && selects(s.spec.selector, w.metadata.labels),
  );
  const ports: ServicePort[] = s.spec.ports.map((p) => {
    const target = p.targetPort ?? p.port;
    const endpoints: Endpoint[] = [];
    let inferred: PortProtocol | undefined;
    for (const w of selected) {
      const wp = w.spec.ports.find((x) =>
        typeof target === 'number' ? x.port === target : x.name === target,
      );
      if (!wp) continue;
      inferred ??= wp.protocol;
      endpoints.push(endpointOf(w, wp.port));
    }
    const protocol = (p.appProtocol && APP_PROTOCOLS[p.appProtocol.toLowerCase()]) || inferred || 'HTTP';
    const sp: ServicePort = { port: p.port, protocol, endpoints: sortEndpoints(endpoints) };
    if (p.name) sp.name = p.name;
    return sp;
  });
  return { namespace: s.metadata.namespace, name: s.metadata.name, implicit: false, ports };
}

function source(kind: string, m: Meta): RouteBinding['source'] {
  return { kind, namespace: m.namespace, name: m.name, createdAt: m.creationTimestamp ?? '' };
}

function parents(refs: ParentRefView[] | undefined, ns: string): RouteBinding['parent'][] {
  return (refs ?? [])
    .filter((r) => (r.kind ?? 'Service') === 'Service')
    .map((r) => {
      const p: RouteBinding['parent'] = { namespace: r.namespace ?? ns, name: r.name };
      if (r.port !== undefined) p.port = r.port;
      return p;
    });
}

function backends(refs: BackendRefView[] | undefined, ns: string): WeightedBackend[] {
  return (refs ?? []).map((r) => {
    const b: WeightedBackend = { namespace: r.namespace ?? ns, name: r.name, weight: r.weight ?? 1 };
    if (r.port !== undefined) b.port = r.port;
    return b;
  });
}

function stringMatches(list: StringMatchView[] | undefined): StringMatch[] {
  return (list ?? []).map((h) => ({ type: h.type ?? 'Exact', name: h.name, value: h.value }));
}

/** Gateway API Duration (`1h`, `30s`, `500ms`, `1m30s`) in milliseconds; 0 means "no timeout". */
export function parseGatewayDuration(text: string): number {
  let ms = 0;
  for (const m of text.matchAll(/(\d+)(ms|h|m|s)/g)) {
    const n = Number(m[1]);
    ms += m[2] === 'h' ? n * 3_600_000 : m[2] === 'm' ? n * 60_000 : m[2] === 's' ? n * 1000 : n;
  }
  return ms;
}

function httpRouteBindings(r: HTTPRouteView): RouteBinding[] {
  const rules: RouteRule[] = (r.spec.rules ?? []).map((rule) => {
    const out: RouteRule = {
      matches: (rule.matches ?? []).map((m) => {
        const match: RouteMatch = {
          headers: stringMatches(m.headers),
          queryParams: stringMatches(m.queryParams),
        };
        match.path = { type: m.path?.type ?? 'PathPrefix', value: m.path?.value ?? '/' };
        if (m.method) match.method = m.method;
        return match;
      }),
      backends: backends(rule.backendRefs, r.metadata.namespace),
    };
    const filters = routeFilters(rule.filters, r.metadata.namespace);
    if (filters) out.filters = filters;
    const timeout = rule.timeouts?.request ?? rule.timeouts?.backendRequest;
    if (timeout !== undefined && parseGatewayDuration(timeout) > 0)
      out.timeoutMs = parseGatewayDuration(timeout);
    return out;
  });
  return parents(r.spec.parentRefs, r.metadata.namespace).map((parent) => ({
    source: source('HTTPRoute', r.metadata),
    parent,
    rules,
  }));
}

function headerEdit(m: HeaderModifierView | undefined): HeaderEdit | undefined {
  if (!m) return undefined;
  return { set: m.set ?? [], add: m.add ?? [], remove: m.remove ?? [] };
}

function pathModifier(p: PathModifierView | undefined): PathModifier | undefined {
  if (!p) return undefined;
  return {
    type: p.type,
    value: (p.type === 'ReplaceFullPath' ? p.replaceFullPath : p.replacePrefixMatch) ?? '/',
  };
}

/** Gateway API filters of one rule, by type; undefined when the rule has none. */
function routeFilters(list: FilterView[] | undefined, ns: string): RouteFilters | undefined {
  if (!list || list.length === 0) return undefined;
  const out: RouteFilters = {};
  for (const f of list) {
    if (f.requestHeaderModifier) out.requestHeaders = headerEdit(f.requestHeaderModifier);
    if (f.responseHeaderModifier) out.responseHeaders = headerEdit(f.responseHeaderModifier);
    if (f.requestMirror) {
      const m = f.requestMirror;
      const percent = m.fraction
        ? (100 * m.fraction.numerator) / (m.fraction.denominator ?? 100)
        : (m.percent ?? 100);
      const mirror: NonNullable<RouteFilters['mirrors']>[number] = {
        namespace: m.backendRef.namespace ?? ns,
        name: m.backendRef.name,
        percent,
      };
      if (m.backendRef.port !== undefined) mirror.port = m.backendRef.port;
      (out.mirrors ??= []).push(mirror);
    }
    if (f.requestRedirect) {
      const r = f.requestRedirect;
      const redirect: NonNullable<RouteFilters['redirect']> = { statusCode: r.statusCode ?? 302 };
      if (r.scheme) redirect.scheme = r.scheme;
      if (r.hostname) redirect.hostname = r.hostname;
      if (r.port !== undefined) redirect.port = r.port;
      const path = pathModifier(r.path);
      if (path) redirect.path = path;
      out.redirect = redirect;
    }
    if (f.urlRewrite) {
      const rewrite: NonNullable<RouteFilters['rewrite']> = {};
      if (f.urlRewrite.hostname) rewrite.hostname = f.urlRewrite.hostname;
      const path = pathModifier(f.urlRewrite.path);
      if (path) rewrite.path = path;
      out.rewrite = rewrite;
    }
  }
  return out;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A GRPCRoute method match is a match on the HTTP/2 path `/<service>/<method>`. */
function grpcMethodPath(m: {
  type?: 'Exact' | 'RegularExpression';
  service?: string;
  method?: string;
}): PathMatch {
  if ((m.type ?? 'Exact') === 'RegularExpression') {
    // Grouped, so that alternatives (`Get|List`) stay inside their path segment.
    return { type: 'RegularExpression', value: `/(?:${m.service ?? '[^/]+'})/(?:${m.method ?? '[^/]+'})` };
  }
  if (m.service && m.method) return { type: 'Exact', value: `/${m.service}/${m.method}` };
  if (m.service) return { type: 'PathPrefix', value: `/${m.service}` };
  return { type: 'RegularExpression', value: `/[^/]+/${escapeRegex(m.method ?? '')}` };
}

function grpcRouteBindings(r: GRPCRouteView): RouteBinding[] {
  const rules: RouteRule[] = (r.spec.rules ?? []).map((rule) => {
    const out: RouteRule = {
      matches: (rule.matches ?? []).map((m) => {
        const match: RouteMatch = { headers: stringMatches(m.headers), queryParams: [] };
        if (m.method) match.path = grpcMethodPath(m.method);
        match.grpc = { service: m.method?.service ?? '', method: m.method?.method ?? '' };
        return match;
      }),
      backends: backends(rule.backendRefs, r.metadata.namespace),
    };
    const filters = routeFilters(rule.filters, r.metadata.namespace);
    if (filters) out.filters = filters;
    return out;
  });
  return parents(r.spec.parentRefs, r.metadata.namespace).map((parent) => ({
    source: source('GRPCRoute', r.metadata),
    parent,
    rules,
  }));
}

function trafficSplitBinding(t: TrafficSplitView): RouteBinding {
  return {
    source: source('TrafficSplit', t.metadata),
    parent: { namespace: t.metadata.namespace, name: t.spec.service },
    rules: [
      {
        matches: [],
        backends: t.spec.backends.map((b) => ({
          namespace: t.metadata.namespace,
          name: b.service,
          weight: b.weight,
        })),
      },
    ],
  };
}

/** Backends named by routes that no Service or workload provides (yet): warnings for `apply`. */
export function missingBackends(model: MeshModel, binding: RouteBinding): string[] {
  const known = new Set(model.services.map((s) => `${s.namespace}/${s.name}`));
  const out = new Set<string>();
  for (const rule of binding.rules) {
    for (const b of rule.backends)
      if (!known.has(`${b.namespace}/${b.name}`)) out.add(`${b.namespace}/${b.name}`);
  }
  if (!known.has(`${binding.parent.namespace}/${binding.parent.name}`)) {
    out.add(`${binding.parent.namespace}/${binding.parent.name}`);
  }
  return [...out];
}
