// Cluster → RuntimeCluster (without endpoints: those come from the load assignment, inline for
// STATIC clusters and from EDS for EDS clusters, and translate.ts joins them).
import type { RuntimeCluster } from '../runtime-config.js';
import { CONFIG_SOURCE, durationMs } from './common.js';
import { CLUSTER_LOAD_ASSIGNMENT } from './cluster-load-assignment.js';
import { at, type ProblemSink } from './problems.js';
import { TRANSPORT_SOCKET_MATCH_SPEC, translateSocketMatches } from './transport-socket.js';
import {
  DURATION,
  EMPTY,
  anyOf,
  enumOf,
  isObject,
  list,
  mapOf,
  message,
  str,
  type MessageSpec,
} from './subset.js';

export const HTTP_PROTOCOL_OPTIONS_KEY = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const HTTP_PROTOCOL_OPTIONS: MessageSpec = {
  fields: {
    explicit_http_config: message({
      fields: { http_protocol_options: message(EMPTY), http2_protocol_options: message(EMPTY) },
      oneOf: [{ fields: ['http_protocol_options', 'http2_protocol_options'], required: true }],
    }),
  },
  required: ['explicit_http_config'],
};

export const CLUSTER: MessageSpec = {
  fields: {
    name: str,
    // STATIC is the enum's zero value, so an unset type reads as STATIC, as in Envoy.
    type: enumOf('STATIC', 'EDS'),
    eds_cluster_config: message({ fields: { eds_config: message(CONFIG_SOURCE), service_name: str } }),
    connect_timeout: message(DURATION),
    lb_policy: enumOf('ROUND_ROBIN', 'LEAST_REQUEST'),
    load_assignment: message(CLUSTER_LOAD_ASSIGNMENT),
    transport_socket_matches: list(message(TRANSPORT_SOCKET_MATCH_SPEC)),
    typed_extension_protocol_options: mapOf(
      [HTTP_PROTOCOL_OPTIONS_KEY],
      anyOf({ [HTTP_PROTOCOL_OPTIONS_KEY]: HTTP_PROTOCOL_OPTIONS }),
    ),
  },
  required: ['name'],
};

/** Envoy's default connect timeout. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

type Obj = Record<string, unknown>;

export interface TranslatedCluster {
  cluster: Omit<RuntimeCluster, 'endpoints' | 'protocol'>;
  /** Set when the cluster asks for HTTP/2 (h2c) or HTTP/1.1 explicitly. */
  httpProtocol?: 'http1' | 'http2';
  /** EDS: the ClusterLoadAssignment name to subscribe to. */
  edsName?: string;
  /** STATIC: its inline assignment (checked, not yet translated). */
  staticAssignment?: Obj;
}

export function translateCluster(c: Obj, sink: ProblemSink): TranslatedCluster {
  const name = c.name as string;
  const type = (c.type as string | undefined) ?? 'STATIC';
  const connectTimeoutMs = isObject(c.connect_timeout)
    ? durationMs(c.connect_timeout)
    : DEFAULT_CONNECT_TIMEOUT_MS;
  if (connectTimeoutMs <= 0) sink.add('connect_timeout', 'must be > 0');
  const out: TranslatedCluster = {
    cluster: {
      name,
      lbPolicy: c.lb_policy === 'LEAST_REQUEST' ? 'LEAST_REQUEST' : 'ROUND_ROBIN',
      connectTimeoutMs,
    },
  };
  const options = isObject(c.typed_extension_protocol_options)
    ? (c.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS_KEY] as Obj | undefined)
    : undefined;
  if (options !== undefined) {
    const explicit = options.explicit_http_config as Obj;
    out.httpProtocol = isObject(explicit.http2_protocol_options) ? 'http2' : 'http1';
  }
  const matches = c.transport_socket_matches as Obj[] | undefined;
  if (matches !== undefined && matches.length > 0) {
    const tls = translateSocketMatches(matches, 'transport_socket_matches', sink);
    if (tls) out.cluster.tls = tls;
  }
  if (type === 'EDS') {
    if (!isObject(c.eds_cluster_config)) sink.add('eds_cluster_config', 'is required for an EDS cluster');
    else if (!isObject(c.eds_cluster_config.eds_config)) {
      sink.add(at('eds_cluster_config', 'eds_config'), 'is required (the sidecar takes endpoints over ADS)');
    }
    if (isObject(c.load_assignment))
      sink.add('load_assignment', 'is only for STATIC clusters (EDS provides it)');
    const service = isObject(c.eds_cluster_config) ? c.eds_cluster_config.service_name : undefined;
    out.edsName = typeof service === 'string' && service !== '' ? service : name;
  } else {
    if (isObject(c.eds_cluster_config)) sink.add('eds_cluster_config', 'is only for EDS clusters');
    if (!isObject(c.load_assignment)) sink.add('load_assignment', 'is required for a STATIC cluster');
    else out.staticAssignment = c.load_assignment;
  }
  return out;
}
