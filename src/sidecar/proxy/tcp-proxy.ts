// Opaque TCP forwarding: each accepted connection gets an upstream connection to an endpoint
// of the listener's cluster, dialled at once — before the client says anything, so protocols
// where the server speaks first (SMTP, MySQL, a greeting) work — and bytes are piped both ways
// with backpressure. Half-close is passed through; an error on either side closes both.
// A listener with RBAC filters decides once per connection, at accept, before dialling: a
// denied connection is closed without a byte read or an upstream opened.

import { InboundTls, peerOf, type TlsCredentials } from './mtls.js';
import net from 'node:net';
import type { Logger } from '../../log.js';
import type { TcpListener } from '../runtime-config.js';
import { Acceptor } from './acceptor.js';
import type { ActiveCluster } from './cluster-manager.js';
import type { ProxyLimits } from './limits.js';
import type { PeerIdentity } from './peer-identity.js';
import { authorize, denialMessage, type RbacStats } from './rbac.js';

export class TcpListenerServer {
  private readonly acceptor: Acceptor;

  constructor(
    public listener: TcpListener,
    private readonly limits: ProxyLimits,
    /** The listener's cluster in the config current when a connection arrives. */
    private readonly resolveCluster: (name: string) => ActiveCluster | undefined,
    private readonly logger: Logger,
    private readonly rbacStats: RbacStats | undefined,
    private readonly credentials: TlsCredentials,
  ) {
    this.configureTls(listener);
    this.acceptor = new Acceptor(
      listener.name,
      listener.host,
      listener.port,
      limits.maxConnectionsPerListener,
      logger,
      (socket) => (this.inbound ? this.inbound.accept(socket) : this.onConnection(socket)),
    );
  }

  private inbound: InboundTls | undefined;

  /** mTLS termination in front of the forwarding, when the listener has it. */
  private configureTls(listener: TcpListener): void {
    const { credentials, logger } = this;
    const host = { credentials, logger, firstByteTimeoutMs: this.limits.firstByteTimeoutMs };
    this.inbound = InboundTls.reconcile(this.inbound, listener, host, (s) => this.onConnection(s));
  }

  listen(): Promise<void> {
    return this.acceptor.listen();
  }

  address(): { host: string; port: number } {
    return this.acceptor.address();
  }

  get connections(): number {
    return this.acceptor.connections;
  }

  update(listener: TcpListener): void {
    this.listener = listener;
    this.configureTls(listener);
  }

  /**
   * Stops accepting. Open connections are not waited for: a TCP stream has no request
   * boundary at which it could be said to be finished, so close() ends them.
   */
  drain(): Promise<void> {
    this.acceptor.stopAccepting();
    return Promise.resolve();
  }

  close(): void {
    this.acceptor.destroyAll();
    this.inbound?.close();
  }

  /** `peer`: the client's verified identity, as mTLS termination recorded it (none: plaintext). */
  private onConnection(client: net.Socket, peer: PeerIdentity | undefined = peerOf(client)): void {
    const { cluster: clusterName, name, idleTimeoutMs, rbac } = this.listener;
    const decision = authorize(rbac, { peer, destinationPort: this.listener.port }, this.rbacStats);
    if (!decision.allowed) {
      this.logger.info(
        { listener: name, peer: peer?.spiffeId, remote: client.remoteAddress },
        `tcp: ${denialMessage(decision)}; closing the connection`,
      );
      client.destroy();
      return;
    }
    const cluster = this.resolveCluster(clusterName);
    const picked = cluster?.lb.pick();
    if (!cluster || !picked) {
      this.logger.warn(
        { listener: name, cluster: clusterName },
        cluster
          ? 'tcp: no healthy endpoint; closing the connection'
          : 'tcp: cluster not in config; closing the connection',
      );
      client.destroy();
      return;
    }
    const settle = picked.stats.begin();
    const startedAt = performance.now();
    const { host, port } = picked.endpoint;
    const tls = picked.endpoint.tls ? cluster.cluster.tls : undefined;
    const upstream = tls
      ? this.credentials.connect(host, port, tls, undefined, { allowHalfOpen: true })
      : net.connect({ host, port, allowHalfOpen: true, noDelay: true });
    const connectMs = cluster.cluster.connectTimeoutMs;
    let connected = false;
    const timer =
      connectMs > 0
        ? setTimeout(() => upstream.destroy(new Error(`connect timeout after ${connectMs} ms`)), connectMs)
        : undefined;
    upstream.once('connect', () => {
      connected = true;
      clearTimeout(timer);
    });
    let closed = 0;
    const onClose = (): void => {
      if (++closed === 2) settle({ ok: connected, latencyMs: performance.now() - startedAt });
    };
    upstream.on('error', (err) => {
      this.logger.debug(
        { listener: name, upstream: `${host}:${port}`, err: err.message },
        'tcp: upstream error',
      );
      client.destroy();
    });
    client.on('error', () => upstream.destroy());
    // A clean close means both directions finished: end (not destroy) the other side so the
    // bytes it still has queued are delivered. An error closes both at once.
    upstream.once('close', (hadError) => {
      clearTimeout(timer);
      if (hadError || !connected) client.destroy();
      else client.end();
      onClose();
    });
    client.once('close', (hadError) => {
      if (hadError) upstream.destroy();
      else upstream.end();
      onClose();
    });
    if (idleTimeoutMs !== undefined && idleTimeoutMs > 0) {
      const idle = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.setTimeout(idleTimeoutMs, idle);
      upstream.setTimeout(idleTimeoutMs, idle);
    }
    // pipe() ends the destination on the source's FIN, so each half-close crosses the proxy.
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
