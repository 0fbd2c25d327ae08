// The sidecar's own view of its configuration: what the xDS translator (config/) produces from
// the Envoy resources it accepted, and all the proxy (proxy/) reads. Plain, typed, validated
// once per update — the hot path never looks at Envoy protos. One RuntimeConfig is immutable;
// an update builds a new one and swaps it in whole (a NACKed update never reaches the proxy).

/** Versions of the accepted xDS resources this config was built from, by type. */
export interface ConfigVersions {
  listeners: string;
  routes: string;
  clusters: string;
  endpoints: string;
}

export interface RuntimeConfig {
  versions: ConfigVersions;
  listeners: RuntimeListener[];
  /** RouteConfiguration name → route table. */
  routes: ReadonlyMap<string, RouteTable>;
  /** Cluster name → cluster (with its endpoints). */
  clusters: ReadonlyMap<string, RuntimeCluster>;
}

export type ListenerDirection = 'outbound' | 'inbound';

export type RuntimeListener = HttpListener | TcpListener;

interface ListenerBase {
  /** Envoy Listener name, e.g. `outbound`, `inbound|15006`, `outbound|5432`. */
  name: string;
  direction: ListenerDirection;
  host: string;
  port: number;
  /** Set when the listener terminates mutual TLS (a DownstreamTlsContext in its filter chain). */
  tls?: ListenerTls;
}

/**
 * STRICT: every connection must be mTLS. PERMISSIVE: a TLS filter chain beside a plaintext one,
 * told apart by the first byte (Envoy's tls_inspector).
 */
export interface ListenerTls {
  mode: 'STRICT' | 'PERMISSIVE';
}

/** How an mTLS cluster reaches its sidecar endpoints (an UpstreamTlsContext). */
export interface UpstreamTls {
  sni: string;
  /** URI SANs the server certificate must carry one of. */
  expectedSpiffeIds: string[];
}

export interface HttpListener extends ListenerBase {
  kind: 'http';
  /**
   * Which HTTP versions the listener accepts from its clients: `auto` sniffs HTTP/1.1 or the
   * HTTP/2 prior-knowledge preface (h2c); `http1`/`http2` accept only that one.
   */
  codec: 'auto' | 'http1' | 'http2';
  /** RouteConfiguration to route by. */
  routeConfig: string;
  /** Limits; undefined = the proxy's defaults. */
  maxRequestHeadersBytes?: number;
  requestTimeoutMs?: number;
  streamIdleTimeoutMs?: number;
  /** RBAC filters in chain order (DENY before ALLOW as compiled); absent or empty = no checks. */
  rbac?: RbacRules[];
  /** How the request path is normalized before any filter sees it; absent = as received. */
  pathNormalization?: PathNormalization;
}

/**
 * The HttpConnectionManager's path normalization, applied in Envoy's order: the escaped-slash
 * action, then RFC 3986 normalization, then merging slashes. The query is never touched.
 */
export interface PathNormalization {
  /** `normalize_path`: dot segments removed, unreserved escapes decoded, `\` read as `/`. */
  normalize: boolean;
  /** `merge_slashes`: runs of `/` become one. */
  mergeSlashes: boolean;
  /** `path_with_escaped_slashes_action` for `%2F` and `%5C` (IMPLEMENTATION_SPECIFIC_DEFAULT = keep). */
  escapedSlashes: 'keep' | 'reject' | 'unescapeAndForward' | 'unescapeAndRedirect';
}

export interface TcpListener extends ListenerBase {
  kind: 'tcp';
  /** Cluster every accepted connection is forwarded to (opaque bytes, no sniffing). */
  cluster: string;
  idleTimeoutMs?: number;
  /** Network RBAC filters in chain order, checked once per connection at accept. */
  rbac?: RbacRules[];
}

/**
 * One RBAC filter (`envoy.filters.http.rbac` or `envoy.filters.network.rbac`). A policy matches
 * when one of its permissions and one of its principals match. ALLOW: a request no policy
 * matches is denied; DENY: a request a policy matches is denied.
 */
export interface RbacRules {
  action: 'ALLOW' | 'DENY';
  /** In name order, so the policy reported for a decision does not depend on map order. */
  policies: RbacPolicy[];
  /** The filter's stat prefix: what it protects (the compiler writes the target services). */
  statPrefix: string;
}

export interface RbacPolicy {
  /** The compiler writes `<Kind>/<namespace>/<name>` of the resource the policy came from. */
  name: string;
  permissions: RbacPermission[];
  principals: RbacPrincipal[];
}

/** What is asked for. `urlPath` matches the path without its query; HTTP-only parts never match a TCP connection. */
export type RbacPermission =
  | { any: true }
  | { and: RbacPermission[] }
  | { or: RbacPermission[] }
  | { not: RbacPermission }
  | { header: HeaderMatch }
  | { urlPath: StringMatcher }
  | { destinationPort: number };

/**
 * Who asks. `authenticated` matches a verified peer (mutual TLS), and when `principalName` is
 * set, only one whose SPIFFE ID it matches; a plaintext client matches no `authenticated`.
 */
export type RbacPrincipal =
  | { any: true }
  | { and: RbacPrincipal[] }
  | { or: RbacPrincipal[] }
  | { not: RbacPrincipal }
  | { authenticated: true; principalName?: StringMatcher };

export interface RouteTable {
  name: string;
  virtualHosts: VirtualHost[];
}

export interface VirtualHost {
  name: string;
  /** Envoy domain patterns: exact, `*.suffix`, `prefix*`, or `*`; matched against Host/:authority. */
  domains: string[];
  routes: Route[];
}

export type StringMatcher =
  | { exact: string; ignoreCase?: boolean }
  | { prefix: string; ignoreCase?: boolean }
  | { suffix: string; ignoreCase?: boolean }
  | { contains: string; ignoreCase?: boolean }
  /** Matched against the whole value (already compiled). */
  | { regex: RegExp };

export interface HeaderMatch {
  /** Lower-case header name; `:method`, `:path`, `:authority` are pseudo-headers. */
  name: string;
  /** Absent: the header must be present (any value). */
  value?: StringMatcher;
  invert?: boolean;
}

export interface QueryMatch {
  name: string;
  value?: StringMatcher;
}

export interface RouteMatch {
  path: { exact: string } | { prefix: string } | { regex: RegExp };
  /** Case-sensitive path matching (Envoy's default). */
  caseSensitive: boolean;
  headers: HeaderMatch[];
  query: QueryMatch[];
}

export interface HeaderValueOption {
  name: string;
  value: string;
  /** `append`: add another value; `overwrite`: replace or add; `addIfAbsent`. */
  action: 'append' | 'overwrite' | 'addIfAbsent';
}

export interface HeaderMutations {
  requestAdd: HeaderValueOption[];
  requestRemove: string[];
  responseAdd: HeaderValueOption[];
  responseRemove: string[];
}

export interface WeightedCluster {
  name: string;
  weight: number;
}

export interface ForwardAction {
  kind: 'forward';
  /** One or more clusters; pick by weight (total > 0). */
  clusters: WeightedCluster[];
  totalWeight: number;
  /** Whole-request timeout; 0 or undefined = none. */
  timeoutMs?: number;
  prefixRewrite?: string;
  /** Replace the whole path when `pattern` matches it. */
  regexRewrite?: { pattern: RegExp; substitution: string };
  hostRewrite?: string;
  /** Copies of the request to other clusters; `fraction` in [0, 1]. Responses are dropped. */
  mirrors: Array<{ cluster: string; fraction: number }>;
}

export interface RedirectAction {
  kind: 'redirect';
  status: 301 | 302 | 303 | 307 | 308;
  scheme?: string;
  host?: string;
  port?: number;
  path?: string;
  prefixRewrite?: string;
}

export interface DirectAction {
  kind: 'direct';
  status: number;
  body?: string;
}

export interface Route {
  /** Envoy route name (for logs, metrics, /config_dump). */
  name: string;
  match: RouteMatch;
  action: ForwardAction | RedirectAction | DirectAction;
  headers: HeaderMutations;
}

export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST';

export interface Endpoint {
  host: string;
  port: number;
  /** Relative weight (≥ 1). */
  weight: number;
  /** Only healthy (or unknown-health) endpoints are picked. */
  healthy: boolean;
  /** Reached over mTLS (the cluster's tls): the endpoint's metadata matched its TLS socket. */
  tls?: boolean;
}

export interface RuntimeCluster {
  name: string;
  lbPolicy: LbPolicy;
  /** How to talk to the endpoints. `http2` is h2c (prior knowledge), as gRPC needs. */
  protocol: 'http1' | 'http2' | 'tcp';
  connectTimeoutMs: number;
  endpoints: Endpoint[];
  /** Set when some endpoints are sidecars reached over mTLS (those with `tls: true`). */
  tls?: UpstreamTls;
}
