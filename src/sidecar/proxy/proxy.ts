// The Weft sidecar's data plane: owns the listeners, the config in force and the upstream
// pools, and wires each accepted request through the filter chain to the forwarder. apply()
// swaps configs atomically — a request keeps the snapshot it started with, so a swap never
// fails in-flight work — and moves listeners only when their address or kind changes.

import { TlsCredentials, peerOf, type TlsIdentity } from './mtls.js';
import type { PeerIdentity } from './peer-identity.js';
import type { Socket } from 'node:net';
import type { Logger } from '../../log.js';
import type { HttpListener, RuntimeConfig, RuntimeListener } from '../runtime-config.js';
import { ClusterManager, type ClusterStatsView } from './cluster-manager.js';
import type { Downstream, RequestHead } from './downstream.js';
import { runRequestFilters } from './filter-chain.js';
import { forward, sendLocalReply } from './forwarder.js';
import { isGrpc } from './http-filters.js';
import { HttpListenerServer } from './http-listener.js';
import { resolveLimits, type ProxyLimits } from './limits.js';
import { proxyError, type LocalReply } from './local-reply.js';
import { RbacStats, type RbacStatsView } from './rbac.js';
import type { ConfigSnapshot, RequestContext } from './request-context.js';
import { TcpListenerServer } from './tcp-proxy.js';
import { tunnelUpgrade, writeRawReply } from './upgrade-tunnel.js';
import { UpstreamPool, poolKey } from './upstream-pool.js';

export interface ProxyOptions {
  logger: Logger;
  limits?: Partial<ProxyLimits>;
}

export interface ListeningAddress {
  name: string;
  host: string;
  port: number;
}

export interface ListenerStats extends ListeningAddress {
  kind: 'http' | 'tcp';
  direction: RuntimeListener['direction'];
  connections: number;
}

export interface ProxyStats {
  /** Versions of the config in force, or null before the first apply(). */
  versions: RuntimeConfig['versions'] | null;
  listeners: ListenerStats[];
  clusters: ClusterStatsView[];
}

export class ProxyListenError extends Error {
  readonly code = 'WEFT_E_PROXY_LISTEN';
  constructor(
    readonly listener: string,
    readonly address: string,
    cause: Error,
  ) {
    super(`listener "${listener}" could not listen on ${address}: ${cause.message}`, { cause });
    this.name = 'ProxyListenError';
  }
}

type ListenerServer = HttpListenerServer | TcpListenerServer;

function sameSocket(a: RuntimeListener, b: RuntimeListener): boolean {
  return a.kind === b.kind && a.host === b.host && a.port === b.port;
}

export class Proxy {
  private readonly logger: Logger;
  private readonly limits: ProxyLimits;
  private readonly clusters = new ClusterManager();
  private readonly rbacStats = new RbacStats();
  private readonly pool: UpstreamPool;
  private readonly credentials: TlsCredentials;
  private readonly listeners = new Map<string, ListenerServer>();
  /** Removed from the config but still finishing their connections. */
  private readonly retired = new Set<ListenerServer>();
  private snapshot: ConfigSnapshot | undefined;
  private applying: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(opts: ProxyOptions) {
    this.logger = opts.logger;
    this.limits = resolveLimits(opts.limits);
    this.credentials = new TlsCredentials(this.logger);
    this.pool = new UpstreamPool(this.limits, this.logger, this.credentials);
  }

  /**
   * The workload's SVID, key and trust bundle (the SDS secrets `default` and `ROOTCA`), at start
   * and on every rotation: new connections, inbound and outbound, use it; open ones carry on.
   */
  setIdentity(identity: TlsIdentity): void {
    this.credentials.set(identity);
  }

  /** Applies a config; calls are serialised. Rejects with ProxyListenError if a listener cannot bind. */
  apply(config: RuntimeConfig): Promise<void> {
    const run = this.applying.then(() => this.applyNow(config));
    this.applying = run.catch(() => undefined);
    return run;
  }

  private async applyNow(config: RuntimeConfig): Promise<void> {
    if (this.closed) throw new Error('proxy is closed');
    // Routes and clusters first: a listener opened below must already find its route table.
    this.snapshot = { config, clusters: this.clusters.build(config), rbacStats: this.rbacStats };

    const wanted = new Map(config.listeners.map((l) => [l.name, l]));
    for (const [name, server] of this.listeners) {
      const next = wanted.get(name);
      if (next && sameSocket(server.listener, next)) continue;
      this.listeners.delete(name);
      this.retire(server);
    }
    const failures: ProxyListenError[] = [];
    for (const l of config.listeners) {
      const existing = this.listeners.get(l.name);
      if (existing) {
        if (existing instanceof HttpListenerServer && l.kind === 'http') existing.update(l);
        else if (existing instanceof TcpListenerServer && l.kind === 'tcp') existing.update(l);
        continue;
      }
      const server = this.createListener(l);
      try {
        await server.listen();
        this.listeners.set(l.name, server);
        this.logger.info({ listener: l.name, ...server.address() }, 'listener open');
      } catch (err) {
        server.close();
        failures.push(new ProxyListenError(l.name, `${l.host}:${l.port}`, err as Error));
      }
    }

    const live = new Set<string>();
    for (const c of config.clusters.values())
      for (const e of c.endpoints) live.add(poolKey(e.host, e.port, e.tls ? c.tls : undefined));
    this.pool.retain(live);

    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, failures.map((f) => f.message).join('; '));
  }

  /** Inbound listeners stop taking connections; resolves when their in-flight requests are done. */
  drain(): Promise<void> {
    return this.drainDirection('inbound');
  }

  /**
   * The same for outbound listeners: for a sidecar shutting down on its own (no app to wait
   * for), so that the app's calls already under way finish instead of being cut by close().
   */
  drainOutbound(): Promise<void> {
    return this.drainDirection('outbound');
  }

  private async drainDirection(direction: RuntimeListener['direction']): Promise<void> {
    const servers = [...this.listeners.values()].filter((s) => s.listener.direction === direction);
    await Promise.all(servers.map((s) => s.drain()));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.applying;
    for (const s of [...this.listeners.values(), ...this.retired]) s.close();
    this.listeners.clear();
    this.retired.clear();
    this.pool.close();
  }

  listening(): ListeningAddress[] {
    return [...this.listeners.entries()].map(([name, s]) => ({ name, ...s.address() }));
  }

  /** Authorization decisions so far, HTTP and TCP (admin `/stats`). */
  rbac(): RbacStatsView {
    return this.rbacStats.view();
  }

  stats(): ProxyStats {
    return {
      versions: this.snapshot?.config.versions ?? null,
      listeners: [...this.listeners.entries()].map(([name, s]) => ({
        name,
        ...s.address(),
        kind: s.listener.kind,
        direction: s.listener.direction,
        connections: s.connections,
      })),
      clusters: this.snapshot ? this.clusters.view(this.snapshot.clusters) : [],
    };
  }

  private retire(server: ListenerServer): void {
    this.retired.add(server);
    void server.drain().then(() => {
      server.close();
      this.retired.delete(server);
    });
  }

  private createListener(l: RuntimeListener): ListenerServer {
    if (l.kind === 'tcp') {
      return new TcpListenerServer(
        l,
        this.limits,
        (name) => this.snapshot?.clusters.get(name),
        this.logger,
        this.rbacStats,
        this.credentials,
      );
    }
    return new HttpListenerServer(
      l,
      this.limits,
      {
        onRequest: (ds, listener) => this.onRequest(ds, listener),
        onUpgrade: (req, socket, head, listener) => this.onUpgrade(req, socket, head, listener),
        onRejected: (ds, listener, reply) => this.onRejected(ds, listener, reply),
      },
      this.logger,
      this.credentials,
    );
  }

  private context(
    listener: HttpListener,
    protocol: 'http1' | 'http2',
    remoteAddress: string,
    head: {
      method: string;
      authority: string;
      path: string;
      scheme: string;
      headers: Record<string, string[]>;
    },
    hasBody: boolean,
    upgrade: boolean,
    peer: PeerIdentity | undefined,
  ): RequestContext | undefined {
    const snapshot = this.snapshot;
    if (!snapshot) return undefined;
    return {
      listener,
      snapshot,
      protocol,
      remoteAddress,
      peer,
      localSpiffeId: this.credentials.spiffeId,
      upgrade,
      grpc: protocol === 'http2' && isGrpc(head.headers['content-type']?.[0]),
      hasBody,
      method: head.method,
      authority: head.authority,
      path: head.path,
      scheme: head.scheme,
      headers: head.headers,
    };
  }

  private onRequest(ds: Downstream, listener: HttpListener): void {
    const ctx = this.context(listener, ds.protocol, ds.remoteAddress, ds.head, ds.hasBody, false, ds.peer);
    if (!ctx) return ds.reset();
    try {
      const invalid = ds.head.invalid;
      if (invalid !== undefined) return sendLocalReply(ds, ctx, badRequest(invalid));
      const unsupported = ds.head.unsupported;
      if (unsupported !== undefined) return sendLocalReply(ds, ctx, notImplemented(unsupported));
      const reply = runRequestFilters(ctx);
      if (reply) return sendLocalReply(ds, ctx, reply);
      forward(ds, ctx, {
        pool: this.pool,
        logger: this.logger,
        streamIdleTimeoutMs: this.limits.streamIdleTimeoutMs,
      });
    } catch (err) {
      this.logger.error(
        { listener: listener.name, err: (err as Error).stack },
        'request failed inside the proxy',
      );
      sendLocalReply(ds, ctx, { status: 500, body: 'internal proxy error\n' });
    }
  }

  private onRejected(ds: Downstream, listener: HttpListener, reply: LocalReply): void {
    const ctx = this.context(listener, ds.protocol, ds.remoteAddress, ds.head, ds.hasBody, false, ds.peer);
    sendLocalReply(ds, ctx, reply);
  }

  private onUpgrade(head: RequestHead, socket: Socket, rest: Buffer, listener: HttpListener): void {
    socket.on('error', () => socket.destroy());
    // No HTTP server owns this socket any more: a throw here would escape to the process.
    try {
      const ctx = this.context(
        listener,
        'http1',
        socket.remoteAddress ?? '',
        head,
        false,
        true,
        peerOf(socket),
      );
      if (!ctx) return void socket.destroy();
      if (head.invalid !== undefined) return writeRawReply(socket, badRequest(head.invalid), ctx);
      if (head.unsupported !== undefined) return writeRawReply(socket, notImplemented(head.unsupported), ctx);
      const reply = runRequestFilters(ctx);
      if (reply) return writeRawReply(socket, reply, ctx);
      tunnelUpgrade(ctx, socket, rest, this.logger, this.limits.streamIdleTimeoutMs, this.credentials);
    } catch (err) {
      this.logger.error(
        { listener: listener.name, err: (err as Error).stack },
        'upgrade request failed inside the proxy',
      );
      try {
        writeRawReply(socket, { status: 500, body: 'internal proxy error\n' });
      } catch {
        socket.destroy();
      }
    }
  }
}

function badRequest(why: string): LocalReply {
  return proxyError(400, 'WEFT_E_PROXY_BAD_REQUEST', `bad request: ${why}`);
}

function notImplemented(why: string): LocalReply {
  return proxyError(501, 'WEFT_E_PROXY_NOT_IMPLEMENTED', `not implemented: ${why}`);
}
