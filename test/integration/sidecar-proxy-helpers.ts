// Shared by the sidecar proxy integration tests: RuntimeConfig builders, and a two-proxy mesh
// (app → outbound proxy → inbound proxy → app server) like the real one, on ephemeral ports.

import http from 'node:http';
import type { AddressInfo, Server } from 'node:net';
import { once } from 'node:events';
import { silentLogger } from '../../src/log.js';
import { Proxy } from '../../src/sidecar/proxy/proxy.js';
import type { ProxyLimits } from '../../src/sidecar/proxy/limits.js';
import type {
  Endpoint,
  ForwardAction,
  HttpListener,
  Route,
  RouteMatch,
  RouteTable,
  RuntimeCluster,
  RuntimeConfig,
  RuntimeListener,
} from '../../src/sidecar/runtime-config.js';

export function endpoint(port: number, extra: Partial<Endpoint> = {}): Endpoint {
  return { host: '127.0.0.1', port, weight: 1, healthy: true, ...extra };
}

export function cluster(
  name: string,
  protocol: RuntimeCluster['protocol'],
  endpoints: Endpoint[],
  extra: Partial<RuntimeCluster> = {},
): RuntimeCluster {
  return { name, lbPolicy: 'ROUND_ROBIN', protocol, connectTimeoutMs: 1_000, endpoints, ...extra };
}

export function prefixMatch(prefix = '/'): RouteMatch {
  return { path: { prefix }, caseSensitive: true, headers: [], query: [] };
}

export function forwardRoute(
  name: string,
  clusterName: string,
  extra: Partial<ForwardAction> = {},
  match: RouteMatch = prefixMatch(),
): Route {
  return {
    name,
    match,
    action: {
      kind: 'forward',
      clusters: [{ name: clusterName, weight: 1 }],
      totalWeight: 1,
      mirrors: [],
      ...extra,
    },
    headers: { requestAdd: [], requestRemove: [], responseAdd: [], responseRemove: [] },
  };
}

export function httpListener(
  name: string,
  direction: 'inbound' | 'outbound',
  routeConfig: string,
  port = 0,
): HttpListener {
  return { name, direction, kind: 'http', codec: 'auto', host: '127.0.0.1', port, routeConfig };
}

export function runtimeConfig(
  listeners: RuntimeListener[],
  routes: RouteTable[],
  clusters: RuntimeCluster[],
  version = '1',
): RuntimeConfig {
  return {
    versions: { listeners: version, routes: version, clusters: version, endpoints: version },
    listeners,
    routes: new Map(routes.map((r) => [r.name, r])),
    clusters: new Map(clusters.map((c) => [c.name, c])),
  };
}

export async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

export function newProxy(limits?: Partial<ProxyLimits>): Proxy {
  return new Proxy({ logger: silentLogger(), limits });
}

export function portOf(proxy: Proxy, listener: string): number {
  const l = proxy.listening().find((x) => x.name === listener);
  if (!l) throw new Error(`no listener ${listener}`);
  return l.port;
}

/** The inbound side of a workload: one listener forwarding everything to the local app. */
export function inboundConfig(
  appPort: number,
  protocol: 'http1' | 'http2',
  extraRoutes: Route[] = [],
): RuntimeConfig {
  return runtimeConfig(
    [httpListener('inbound', 'inbound', 'inbound')],
    [
      {
        name: 'inbound',
        virtualHosts: [
          { name: 'inbound', domains: ['*'], routes: [...extraRoutes, forwardRoute('app', 'inbound|app')] },
        ],
      },
    ],
    [cluster('inbound|app', protocol, [endpoint(appPort)])],
  );
}

/** The outbound side: service `svc` (any port) goes to the peer's inbound listener. */
export function outboundConfig(
  inboundPort: number,
  protocol: 'http1' | 'http2',
  opts: { routes?: Route[]; version?: string; listenerPort?: number } = {},
): RuntimeConfig {
  return runtimeConfig(
    [httpListener('outbound', 'outbound', 'outbound', opts.listenerPort ?? 0)],
    [
      {
        name: 'outbound',
        virtualHosts: [
          {
            name: 'svc',
            domains: ['svc', 'svc.default.svc'],
            routes: opts.routes ?? [forwardRoute('svc', 'outbound|svc')],
          },
        ],
      },
    ],
    [cluster('outbound|svc', protocol, [endpoint(inboundPort)])],
    opts.version,
  );
}

export interface Mesh {
  outbound: Proxy;
  inbound: Proxy;
  /** Port the app dials (its outbound proxy). */
  port: number;
  inboundPort: number;
  close(): Promise<void>;
}

/** app → outbound proxy → inbound proxy → app server at `appPort`, speaking `protocol` between hops. */
export async function startMesh(
  appPort: number,
  protocol: 'http1' | 'http2',
  limits?: Partial<ProxyLimits>,
): Promise<Mesh> {
  const inbound = newProxy(limits);
  await inbound.apply(inboundConfig(appPort, protocol));
  const inboundPort = portOf(inbound, 'inbound');
  const outbound = newProxy(limits);
  await outbound.apply(outboundConfig(inboundPort, protocol));
  return {
    outbound,
    inbound,
    port: portOf(outbound, 'outbound'),
    inboundPort,
    async close() {
      await outbound.close();
      await inbound.close();
    },
  };
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP/1.1 request, Host `svc` unless given; no keep-alive unless an agent is passed. */
export function get(
  port: number,
  path: string,
  opts: { headers?: http.OutgoingHttpHeaders; method?: string; agent?: http.Agent; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: opts.method ?? 'GET',
        headers: { host: 'svc', ...opts.headers },
        agent: opts.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    (server as http.Server).closeAllConnections?.();
    server.close(() => resolve());
  });
}
