// The resources only a sidecar gets (Weft's own, or an Envoy in its place): real socket
// listeners instead of proxyless API listeners.
//   outbound          the app's HTTP proxy (127.0.0.1:15001): one HttpConnectionManager routing
//                     by Host over RouteConfiguration `outbound`, one virtual host per service
//                     port under every name it can be reached by;
//   inbound|<port>    where mesh traffic for this workload arrives: to the local app, through
//                     an HTTP connection manager (HTTP, HTTP2, GRPC) or a TCP proxy (TCP),
//                     behind the RBAC filters of the authorization policies targeting the
//                     Services that select this workload (authorization.ts);
//   outbound|<local>  one TCP proxy per declared opaque TCP upstream, on its own local port.
// The app cluster `inbound|<appPort>||` is STATIC: the app is on this host, not in EDS.

import type {
  AuthorizationBinding,
  MeshService,
  MtlsMode,
  PathNormalizationMode,
  ServicePort,
} from '../registry/model.js';
import { serviceKey } from '../registry/model.js';
import { rbacFilters } from './authorization.js';
import type { SidecarView } from './compile.js';
import { ADS_SOURCE, HCM_TYPE, ROUTER_TYPE, http2Options, loadAssignment } from './envoy-fragments.js';
import { inboundTls } from './mtls.js';
import { clusterFor } from './names.js';
import { DEFAULT_PATH_NORMALIZATION, hcmPathFields } from './path-normalization.js';

const TCP_PROXY_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
export const OUTBOUND_LISTENER = 'outbound';
export const OUTBOUND_ROUTE_CONFIG = 'outbound';

export function inboundListenerName(port: number): string {
  return `inbound|${port}`;
}

export function inboundClusterName(appPort: number): string {
  return `inbound|${appPort}||`;
}

function socketAddress(host: string, port: number): object {
  return { socket_address: { address: host, port_value: port } };
}

function httpConnectionManager(
  statPrefix: string,
  codec: string,
  routing: Record<string, unknown>,
  paths: PathNormalizationMode,
  rbac: object[] = [],
): object {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': HCM_TYPE,
      stat_prefix: statPrefix,
      codec_type: codec,
      ...routing,
      // Before any filter: RBAC, routing and the app must all see one spelling of the path.
      ...hcmPathFields(paths),
      // Authorization before routing: a denied request never reaches the router.
      http_filters: [...rbac, { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } }],
    },
  };
}

function tcpProxy(statPrefix: string, cluster: string): object {
  return {
    name: 'envoy.filters.network.tcp_proxy',
    typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: statPrefix, cluster },
  };
}

function listener(
  name: string,
  host: string,
  port: number,
  direction: string,
  filter: object,
  ahead: object[] = [],
): object {
  return {
    name,
    address: socketAddress(host, port),
    traffic_direction: direction,
    filter_chains: [{ filters: [...ahead, filter] }],
  };
}

/** The Services with an endpoint on this workload (any port): whose policies it enforces. */
/** The workload's service account, as its endpoints in those Services record it. */
function serviceAccountOf(
  workload: string | undefined,
  services: MeshService[],
): { namespace: string; name: string } | undefined {
  if (workload === undefined) return undefined;
  for (const s of services)
    for (const p of s.ports)
      for (const e of p.endpoints)
        if (e.workload === workload) return { namespace: workload.split('/')[0]!, name: e.serviceAccount };
  return undefined;
}

function servicesOf(workload: string | undefined, services: Map<string, MeshService>): MeshService[] {
  if (workload === undefined) return [];
  return [...services.values()].filter((s) =>
    s.ports.some((p) => p.endpoints.some((e) => e.workload === workload)),
  );
}

/** `svc` (the node's namespace) or `svc.ns`, as an app would name a TCP upstream. */
function resolveService(name: string, nodeNamespace: string): { namespace: string; name: string } {
  const dot = name.indexOf('.');
  return dot < 0
    ? { namespace: nodeNamespace, name }
    : { namespace: name.slice(dot + 1), name: name.slice(0, dot) };
}

export interface SidecarResources {
  listeners: Map<string, object>;
  routes: Map<string, object>;
  clusters: Map<string, object>;
  /** Clusters named by TCP upstreams whose service does not exist (yet): cluster → protocol. */
  missingClusters: Map<string, ServicePort['protocol']>;
}

export function sidecarResources(
  view: SidecarView,
  nodeNamespace: string,
  hosts: Array<{ name: string; domains: string[]; routes: object[] }>,
  services: Map<string, MeshService>,
  authorization: readonly AuthorizationBinding[] = [],
  /** The inbound listener's mTLS mode; undefined: plaintext (no trust domain to verify). */
  mtlsMode?: MtlsMode,
  /** How both HTTP listeners normalize request paths (the MeshConfig's). */
  paths: PathNormalizationMode = DEFAULT_PATH_NORMALIZATION,
): SidecarResources {
  const out: SidecarResources = {
    listeners: new Map(),
    routes: new Map(),
    clusters: new Map(),
    missingClusters: new Map(),
  };

  out.listeners.set(
    OUTBOUND_LISTENER,
    listener(
      OUTBOUND_LISTENER,
      view.outbound.host,
      view.outbound.port,
      'OUTBOUND',
      httpConnectionManager(
        OUTBOUND_LISTENER,
        'AUTO',
        { rds: { route_config_name: OUTBOUND_ROUTE_CONFIG, config_source: ADS_SOURCE } },
        paths,
      ),
    ),
  );
  out.routes.set(OUTBOUND_ROUTE_CONFIG, {
    name: OUTBOUND_ROUTE_CONFIG,
    virtual_hosts: [...hosts]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((h) => ({ name: h.name, domains: h.domains, routes: h.routes })),
  });

  const { inbound } = view;
  if (inbound) {
    const appCluster = inboundClusterName(inbound.appPort);
    const inboundName = inboundListenerName(inbound.port);
    const targets = servicesOf(view.workload, services);
    const tcp = inbound.protocol === 'TCP';
    const rbac = rbacFilters(
      authorization,
      targets,
      serviceAccountOf(view.workload, targets),
      tcp ? 'tcp' : 'http',
    );
    const inboundFilter = tcp
      ? tcpProxy(inboundName, appCluster)
      : httpConnectionManager(
          inboundName,
          inbound.protocol === 'HTTP' ? 'AUTO' : 'HTTP2',
          {
            route_config: {
              name: inboundName,
              virtual_hosts: [
                {
                  name: 'inbound',
                  domains: ['*'],
                  routes: [
                    {
                      name: 'default',
                      match: { prefix: '/' },
                      // No timeout: the app decides how long its requests and streams last.
                      route: { cluster: appCluster, timeout: { seconds: 0, nanos: 0 } },
                    },
                  ],
                },
              ],
            },
          },
          paths,
          rbac,
        );
    const ahead = tcp ? rbac : [];
    const plain = listener(inboundName, inbound.host, inbound.port, 'INBOUND', inboundFilter, ahead);
    out.listeners.set(
      inboundName,
      mtlsMode === undefined ? plain : { ...plain, ...inboundTls(mtlsMode, [...ahead, inboundFilter]) },
    );
    out.clusters.set(appCluster, {
      name: appCluster,
      type: 'STATIC',
      connect_timeout: { seconds: 5, nanos: 0 },
      lb_policy: 'ROUND_ROBIN',
      load_assignment: loadAssignment(appCluster, [{ address: '127.0.0.1', port: inbound.appPort }]),
      ...http2Options(inbound.protocol),
    });
  }

  for (const up of view.tcpUpstreams) {
    const target = resolveService(up.service, nodeNamespace);
    const svc = services.get(serviceKey(target.namespace, target.name));
    const cluster = clusterFor(svc, target.namespace, target.name, up.port);
    const name = `outbound|${up.localPort}`;
    out.listeners.set(name, listener(name, '127.0.0.1', up.localPort, 'OUTBOUND', tcpProxy(name, cluster)));
    if (!svc?.ports.some((p) => p.port === up.port)) out.missingClusters.set(cluster, 'TCP');
  }
  return out;
}
