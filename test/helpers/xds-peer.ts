// Test peers for the xDS server that nobody at Weft wrote: a proxyless grpc-js client driven by
// @grpc/grpc-js-xds, and the resources such a client needs to reach echo servers. Used by the
// xDS interop tests, and by control-plane end-to-end tests and the demo.
import * as grpc from '@grpc/grpc-js';
import { register } from '@grpc/grpc-js-xds';
import { echoService, type EchoResponse } from '../../src/demo/echo-server.js';
import { TypeUrl, type ResourceSet } from '../../src/xds/types.js';

export { startEchoServer, type EchoServer, type EchoResponse } from '../../src/demo/echo-server.js';

let registered = false;

/** Installs the xds: resolver and LB policies into grpc-js (once per process). */
export function ensureXdsRegistered(): void {
  if (registered) return;
  register();
  registered = true;
}

export interface XdsNode {
  id: string;
  cluster?: string;
  metadata?: Record<string, unknown>;
}

/** A grpc-js-xds bootstrap (JSON) pointing at one insecure xDS server. */
export function xdsBootstrap(xdsAddress: string, node: XdsNode): string {
  return JSON.stringify({
    xds_servers: [
      { server_uri: xdsAddress, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] },
    ],
    // grpc-js-xds rejects a node without `locality`, even an empty one.
    node: { id: node.id, cluster: node.cluster ?? 'test', locality: {}, metadata: node.metadata ?? {} },
  });
}

export interface XdsEchoClient {
  readonly client: grpc.Client;
  call(
    message: string,
    opts?: { metadata?: Record<string, string>; timeoutMs?: number },
  ): Promise<EchoResponse>;
  close(): void;
}

/** An Echo client on `xds:///<listener>` whose channel has its own xDS client and bootstrap. */
export function createXdsEchoClient(opts: {
  xdsAddress: string;
  listener?: string;
  node?: XdsNode;
}): XdsEchoClient {
  ensureXdsRegistered();
  const Echo = echoService();
  const client = new Echo(`xds:///${opts.listener ?? 'echo'}`, grpc.credentials.createInsecure(), {
    'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': xdsBootstrap(
      opts.xdsAddress,
      opts.node ?? { id: 'test-client' },
    ),
  });
  return {
    client,
    call(message, callOpts) {
      const md = new grpc.Metadata();
      for (const [k, v] of Object.entries(callOpts?.metadata ?? {})) md.set(k, v);
      const deadline = Date.now() + (callOpts?.timeoutMs ?? 5000);
      return new Promise<EchoResponse>((resolve, reject) => {
        const echo = client.Echo as (
          req: object,
          md: grpc.Metadata,
          options: grpc.CallOptions,
          cb: (err: grpc.ServiceError | null, res: EchoResponse) => void,
        ) => void;
        echo.call(client, { message }, md, { deadline }, (err, res) => (err ? reject(err) : resolve(res)));
      });
    },
    close: () => client.close(),
  };
}

export interface Backend {
  host: string;
  port: number;
}

/**
 * The four resources a proxyless gRPC client needs for `xds:///<listener>`: an API Listener
 * with an HttpConnectionManager (RDS over ADS, router filter last), a RouteConfiguration
 * sending everything to one cluster, an EDS Cluster, and its ClusterLoadAssignment.
 */
export function proxylessResources(opts: {
  listener?: string;
  route?: string;
  cluster?: string;
  backends: readonly Backend[];
}): ResourceSet {
  const listener = opts.listener ?? 'echo';
  const route = opts.route ?? `${listener}-route`;
  const cluster = opts.cluster ?? `${listener}-cluster`;
  return new Map([
    [TypeUrl.Listener, new Map([[listener, apiListener(listener, route)]])],
    [TypeUrl.RouteConfiguration, new Map([[route, routeToCluster(route, cluster)]])],
    [TypeUrl.Cluster, new Map([[cluster, edsCluster(cluster)]])],
    [TypeUrl.ClusterLoadAssignment, new Map([[cluster, loadAssignment(cluster, opts.backends)]])],
  ]);
}

export function apiListener(name: string, routeConfigName: string): object {
  return {
    name,
    api_listener: {
      api_listener: {
        '@type':
          'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
        stat_prefix: name,
        rds: { route_config_name: routeConfigName, config_source: { ads: {}, resource_api_version: 'V3' } },
        http_filters: [
          {
            name: 'router',
            typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
          },
        ],
      },
    },
  };
}

export function routeToCluster(name: string, cluster: string): object {
  return {
    name,
    virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '' }, route: { cluster } }] }],
  };
}

export function edsCluster(name: string): object {
  return {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } },
    lb_policy: 'ROUND_ROBIN',
    connect_timeout: { seconds: 1, nanos: 0 },
  };
}

export function loadAssignment(clusterName: string, backends: readonly Backend[]): object {
  return {
    cluster_name: clusterName,
    endpoints: [
      {
        // grpc-js-xds rejects a locality_lb_endpoints without `locality` and silently skips one
        // without `load_balancing_weight`.
        locality: { region: 'local', zone: 'a' },
        load_balancing_weight: { value: 1 },
        lb_endpoints: backends.map((b) => ({
          endpoint: { address: { socket_address: { address: b.host, port_value: b.port } } },
          health_status: 'HEALTHY',
        })),
      },
    ],
  };
}

/**
 * An XdsConfigSource for tests: the same ResourceSet for every node, replaced wholesale (new
 * maps and objects, as the ADS server's immutability contract asks) on each change.
 */
export class MutableConfigSource {
  version = 0;
  resources: ResourceSet = new Map();
  private readonly listeners = new Set<() => void>();

  constructor(initial?: ResourceSet) {
    if (initial) this.replace(initial);
  }

  resourcesFor(): { version: string; resources: ResourceSet } {
    return { version: String(this.version), resources: this.resources };
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Replaces everything and notifies. */
  replace(resources: ResourceSet): void {
    this.resources = new Map([...resources].map(([t, m]) => [t, new Map(m)]));
    this.bump();
  }

  /** Sets (or with `undefined`, deletes) one resource and notifies. */
  set(typeUrl: TypeUrl, name: string, obj: object | undefined): void {
    const next = new Map(this.resources);
    const m = new Map(next.get(typeUrl) ?? []);
    if (obj === undefined) m.delete(name);
    else m.set(name, obj);
    next.set(typeUrl, m);
    this.resources = next;
    this.bump();
  }

  /** Notifies without changing anything (the server must then send nothing). */
  touch(): void {
    this.bump();
  }

  private bump(): void {
    this.version++;
    for (const l of this.listeners) l();
  }
}
