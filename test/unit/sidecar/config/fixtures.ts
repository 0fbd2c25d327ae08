// Envoy resources for translator tests, written as the control plane would and passed through
// the real codec (encode, then decode), so tests see exactly the form the agent hands over.
import { decodeResource, encodeResource } from '../../../../src/xds/codec.js';
import { TypeUrl } from '../../../../src/xds/types.js';
import {
  formatProblem,
  translate,
  type TranslateResult,
  type XdsResources,
} from '../../../../src/sidecar/config/translate.js';
import type { RuntimeConfig } from '../../../../src/sidecar/runtime-config.js';

export const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
export const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
export const ADS = { ads: {}, resource_api_version: 'V3' };
export const ROUTER_FILTER = { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } };

type Obj = Record<string, unknown>;

/** `obj` as decodeResource yields it after the wire (throws if it is not valid Envoy). */
export function decoded(typeUrl: TypeUrl, obj: object): Obj {
  return decodeResource(typeUrl, encodeResource(typeUrl, obj));
}

export function hcm(extra: Obj = {}): Obj {
  return {
    '@type': HCM,
    stat_prefix: 'test',
    rds: { route_config_name: 'outbound', config_source: ADS },
    http_filters: [ROUTER_FILTER],
    ...extra,
  };
}

export function listener(name: string, port: number, typedConfig: Obj, extra: Obj = {}): Obj {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: port } },
    filter_chains: [{ filters: [{ name: 'f', typed_config: typedConfig }] }],
    ...extra,
  };
}

export function httpListener(name = 'outbound', port = 15001, hcmExtra: Obj = {}, extra: Obj = {}): Obj {
  return listener(name, port, hcm(hcmExtra), extra);
}

export function tcpListener(name: string, port: number, cluster: string, extra: Obj = {}): Obj {
  return listener(name, port, { '@type': TCP_PROXY, stat_prefix: name, cluster, ...extra });
}

export function routeConfig(name: string, routes: Obj[], domains = ['*']): Obj {
  return { name, virtual_hosts: [{ name: 'vh', domains, routes }] };
}

export function edsCluster(name: string, extra: Obj = {}): Obj {
  return {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS, service_name: name },
    connect_timeout: { seconds: 1, nanos: 0 },
    lb_policy: 'ROUND_ROBIN',
    ...extra,
  };
}

export function assignment(
  name: string,
  endpoints: Array<{ host: string; port: number }>,
  lbExtra: Obj = {},
): Obj {
  return {
    cluster_name: name,
    endpoints: [
      {
        locality: { zone: 'a' },
        load_balancing_weight: { value: 1 },
        lb_endpoints: endpoints.map((e) => ({
          endpoint: { address: { socket_address: { address: e.host, port_value: e.port } } },
          health_status: 'HEALTHY',
          ...lbExtra,
        })),
      },
    ],
  };
}

export interface RawSet {
  listeners?: Obj[];
  routes?: Obj[];
  clusters?: Obj[];
  endpoints?: Obj[];
}

/** Decodes every resource and keys it by name, as the ADS client does. */
export function resources(set: RawSet): XdsResources {
  const by = (typeUrl: TypeUrl, list: Obj[] | undefined, key: string): Map<string, unknown> =>
    new Map((list ?? []).map((o) => [o[key] as string, decoded(typeUrl, o)]));
  return {
    listeners: by(TypeUrl.Listener, set.listeners, 'name'),
    routes: by(TypeUrl.RouteConfiguration, set.routes, 'name'),
    clusters: by(TypeUrl.Cluster, set.clusters, 'name'),
    endpoints: by(TypeUrl.ClusterLoadAssignment, set.endpoints, 'cluster_name'),
  };
}

export const VERSIONS = { listeners: '1', routes: '1', clusters: '1', endpoints: '1' };

export function run(set: RawSet, previous?: RuntimeConfig): TranslateResult {
  return translate({ ...resources(set), versions: VERSIONS, ...(previous ? { previous } : {}) });
}

/** The config, failing the test with the problems when there are any. */
export function ok(set: RawSet, previous?: RuntimeConfig): Extract<TranslateResult, { ok: true }> {
  const r = run(set, previous);
  if (!r.ok) throw new Error(`unexpected problems:\n${r.problems.map(formatProblem).join('\n')}`);
  return r;
}

/** The formatted problems, failing the test when the set translates. */
export function problems(set: RawSet): string[] {
  const r = run(set);
  if (r.ok) throw new Error('expected problems, got a config');
  return r.problems.map(formatProblem);
}

/** A full, valid sidecar set: outbound HTTP via RDS to one EDS cluster with two endpoints. */
export function basicSet(routeExtra: Obj = {}): RawSet {
  return {
    listeners: [httpListener()],
    routes: [
      routeConfig('outbound', [
        { name: 'r', match: { prefix: '/' }, route: { cluster: 'c' }, ...routeExtra },
      ]),
    ],
    clusters: [edsCluster('c')],
    endpoints: [
      assignment('c', [
        { host: '10.0.0.1', port: 80 },
        { host: '10.0.0.2', port: 80 },
      ]),
    ],
  };
}
