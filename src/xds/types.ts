// The contract between the compiler (which decides what each proxy should have) and the ADS
// server (which only diffs and ships). Resources are plain objects in the proto's own field
// names (snake_case, as protobufjs loads them with keepCase), `google.protobuf.Any` values
// written as `{ '@type': 'type.googleapis.com/…', …fields }`, Durations as {seconds, nanos}.

export const TypeUrl = {
  Listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  RouteConfiguration: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  Cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  ClusterLoadAssignment: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  Secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
} as const;
export type TypeUrl = (typeof TypeUrl)[keyof typeof TypeUrl];

/** The order in which an ADS server should push types (make-before-break, as Envoy expects). */
export const PUSH_ORDER: readonly TypeUrl[] = [
  TypeUrl.Cluster,
  TypeUrl.ClusterLoadAssignment,
  TypeUrl.Listener,
  TypeUrl.RouteConfiguration,
  TypeUrl.Secret,
];

/** What a proxy said about itself in the first DiscoveryRequest (`node` field). */
export interface NodeInfo {
  id: string;
  cluster: string;
  /** google.protobuf.Struct converted to a plain JSON object. */
  metadata: Record<string, unknown>;
  userAgentName: string;
  userAgentVersion: string;
}

/** One proxy's desired state: for each type, resource name → resource object. */
export type ResourceSet = Map<TypeUrl, Map<string, object>>;
