// The mesh as the compiler sees it: services with their ports and endpoints, and the routes
// attached to them, and the authorization policies guarding them, already resolved from the
// stored resources (Workload, Service, HTTPRoute, GRPCRoute, TrafficSplit, AuthorizationPolicy). Kept separate from the resource kinds so that the compiler depends
// on one small, stable shape and every route kind is translated into it once.

export type PortProtocol = 'HTTP' | 'HTTP2' | 'GRPC' | 'TCP';

export interface Endpoint {
  address: string;
  port: number;
  /** `namespace/name` of the Workload this endpoint comes from. */
  workload: string;
  serviceAccount: string;
  labels: Record<string, string>;
  /**
   * True when a Weft sidecar registered this Workload (annotation `weft.dev/sidecar: "true"`):
   * it is reached over mutual TLS. Absent: a hand-registered Workload, reached in plaintext.
   */
  sidecar?: boolean;
}

export interface ServicePort {
  name?: string;
  port: number;
  protocol: PortProtocol;
  /** Ready endpoints for this port, sorted by workload then address. */
  endpoints: Endpoint[];
}

export interface MeshService {
  namespace: string;
  name: string;
  /** True when the service exists only because workloads carry `app: <name>`. */
  implicit: boolean;
  ports: ServicePort[];
}

export type PathMatch = { type: 'Exact' | 'PathPrefix' | 'RegularExpression'; value: string };
export type StringMatch = { type: 'Exact' | 'RegularExpression'; name: string; value: string };

export interface RouteMatch {
  path?: PathMatch;
  headers: StringMatch[];
  queryParams: StringMatch[];
  method?: string;
  /**
   * For GRPCRoute matches: the service and method as written, which GRPCRoute precedence ranks
   * by (characters of service, then of method), independently of how `path` spells them.
   */
  grpc?: { service: string; method: string };
}

export interface WeightedBackend {
  namespace: string;
  name: string;
  /** Service port to send to; absent = the port the request came in on (or the only port). */
  port?: number;
  weight: number;
}

export interface HeaderEdit {
  set: Array<{ name: string; value: string }>;
  add: Array<{ name: string; value: string }>;
  remove: string[];
}

export type PathModifier = { type: 'ReplaceFullPath' | 'ReplacePrefixMatch'; value: string };

/** Gateway API rule filters, one field per filter type (each appears at most once per rule). */
export interface RouteFilters {
  requestHeaders?: HeaderEdit;
  responseHeaders?: HeaderEdit;
  /** Copies of requests to other services; `percent` of requests (0–100, fractional allowed). */
  mirrors?: Array<{ namespace: string; name: string; port?: number; percent: number }>;
  redirect?: { scheme?: string; hostname?: string; port?: number; path?: PathModifier; statusCode: number };
  rewrite?: { hostname?: string; path?: PathModifier };
}

export interface RouteRule {
  matches: RouteMatch[];
  backends: WeightedBackend[];
  /** Request timeout in milliseconds, when the route sets one. */
  timeoutMs?: number;
  filters?: RouteFilters;
}

/** One route resource's rules as they apply to one parent service (and optionally one port). */
export interface RouteBinding {
  source: { kind: string; namespace: string; name: string; createdAt: string };
  parent: { namespace: string; name: string; port?: number };
  rules: RouteRule[];
}

/** Callers, as an AuthorizationPolicy `from` entry names them; every field set must match. */
export interface AuthzSource {
  /** SPIFFE IDs, prefixes ending in `*`, or `*` (any verified identity); any of them. */
  principals?: string[];
  notPrincipals?: string[];
  namespaces?: string[];
  /** Service accounts (SMI TrafficTarget sources), in any trust domain. */
  serviceAccounts?: Array<{ namespace: string; name: string }>;
}

/** Requests, as a `to` entry names them; every field set must match. */
export interface AuthzOperation {
  methods?: string[];
  /** `/exact`, `/prefix/*`, or `*`; any of them. */
  paths?: string[];
  notPaths?: string[];
  /** An RE2 pattern the whole path must match (SMI HTTPRouteGroup `pathRegex`). */
  pathRegex?: string;
  /** All must match; neither value nor prefix: present. */
  headers?: Array<{ name: string; value?: string; prefix?: string }>;
}

/** A rule matches when one `from` entry and one `to` entry match (absent: anything). */
export interface AuthzRule {
  from?: AuthzSource[];
  to?: AuthzOperation[];
}

/**
 * One authorization policy, bound to the Service whose workloads enforce it, or (SMI
 * TrafficTarget, `kind: 'ServiceAccount'`) to the workloads running as a service account.
 */
export interface AuthorizationBinding {
  source: { kind: string; namespace: string; name: string };
  target: { namespace: string; name: string; kind?: 'ServiceAccount' };
  action: 'ALLOW' | 'DENY';
  rules: AuthzRule[];
}
export type MtlsMode = 'STRICT' | 'PERMISSIVE';
/** How sidecars normalize request paths (MeshConfig `spec.pathNormalization.normalization`). */
export type PathNormalizationMode = 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';

/** The annotation a sidecar puts on the Workload it registers. */
export const SIDECAR_ANNOTATION = 'weft.dev/sidecar';

export interface MeshModel {
  /** From the MeshConfig; absent (no MeshConfig) means STRICT. */
  mtlsMode?: MtlsMode;
  /** From the MeshConfig; absent means MERGE_SLASHES (see compiler/path-normalization.ts). */
  pathNormalization?: PathNormalizationMode;
  /** Sorted by namespace then name. */
  services: MeshService[];
  /** Sorted by creation time then namespace/name (Gateway API tie-break order). */
  routes: RouteBinding[];
  /** Sorted by source kind, namespace and name. Absent: no policies. */
  authorization?: AuthorizationBinding[];
}

export function serviceKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}
