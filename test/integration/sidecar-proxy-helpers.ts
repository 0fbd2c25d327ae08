// Shared by the sidecar proxy integration tests: RuntimeConfig builders, and a two-proxy mesh
// (app → outbound proxy → inbound proxy → app server) like the real one, on ephemeral ports.

import http from 'node:http';
import net from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
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

// A minimal RFC 6455 framing, enough to echo text frames: the proxy must not care what flows
// after the 101, and pulling in a WebSocket library for that would be a dependency for nothing.
export const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function wsAccept(key: string): string {
  return createHash('sha1')
    .update(key + WS_GUID)
    .digest('base64');
}

export function encodeWsFrame(opcode: number, payload: Buffer, masked: boolean): Buffer {
  const len = payload.length;
  const header: number[] = [0x80 | opcode];
  const maskBit = masked ? 0x80 : 0;
  if (len < 126) header.push(maskBit | len);
  else if (len < 65536) header.push(maskBit | 126, len >> 8, len & 0xff);
  else {
    header.push(maskBit | 127, 0, 0, 0, 0);
    header.push((len >>> 24) & 0xff, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff);
  }
  if (!masked) return Buffer.concat([Buffer.from(header), payload]);
  const mask = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= mask[i % 4]!;
  return Buffer.concat([Buffer.from(header), mask, body]);
}

/** Accumulates bytes and yields whole frames (unmasked payloads). */
export class WsFrameReader {
  private buf = Buffer.alloc(0);

  push(chunk: Buffer): Array<{ opcode: number; payload: Buffer }> {
    this.buf = Buffer.concat([this.buf, chunk]);
    const frames: Array<{ opcode: number; payload: Buffer }> = [];
    for (;;) {
      if (this.buf.length < 2) return frames;
      const opcode = this.buf[0]! & 0x0f;
      const masked = (this.buf[1]! & 0x80) !== 0;
      let len = this.buf[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return frames;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return frames;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      const maskLen = masked ? 4 : 0;
      if (this.buf.length < off + maskLen + len) return frames;
      const payload = Buffer.from(this.buf.subarray(off + maskLen, off + maskLen + len));
      if (masked) {
        const mask = this.buf.subarray(off, off + 4);
        for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!;
      }
      frames.push({ opcode, payload });
      this.buf = this.buf.subarray(off + maskLen + len);
    }
  }
}

/** Writes raw bytes and collects what comes back until the server closes or `ms` pass. */
export function rawExchange(port: number, data: string, ms = 2_000): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    const c = net.connect(port, '127.0.0.1', () => c.write(data));
    const timer = setTimeout(() => {
      c.destroy();
      resolve(out);
    }, ms);
    c.on('data', (d: Buffer) => (out += d.toString('latin1')));
    c.on('error', () => {});
    c.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}
