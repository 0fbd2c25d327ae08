// Connections to upstream endpoints, reused across requests: an H1Pool per endpoint for
// HTTP/1.1 keep-alive (upstream-h1.ts), one multiplexed ClientHttp2Session per endpoint for h2c. A session that
// is going away (GOAWAY, error, close) leaves the pool at once so the next request dials anew,
// while its open streams finish. Endpoints no cluster uses any more are retired gracefully.

import http2 from 'node:http2';
import type { Logger } from '../../log.js';
import { endpointKey } from './cluster-manager.js';
import type { ProxyLimits } from './limits.js';
import type { UpstreamTls } from '../runtime-config.js';
import type { TlsCredentials } from './mtls.js';
import { H1Pool, type ConnectFn } from './upstream-h1.js';
import { MUX_ALPN, MuxSession } from './mux-session.js';
import type { OnReadOpts, Socket } from 'node:net';

export interface H2Connection {
  readonly session: http2.ClientHttp2Session;
  /** False until the TCP connection is up: errors before that are connect failures (503). */
  connected: boolean;
  /** Why the connection failed, when it did; read by streams that error because of it. */
  failure?: Error;
}

/**
 * Pools are per endpoint and per way of reaching it: an address that changes from a plaintext
 * Workload to a sidecar (or back) must not reuse the other kind's connections.
 */
export function poolKey(host: string, port: number, tls: UpstreamTls | undefined): string {
  return tls ? `mtls|${endpointKey(host, port)}` : endpointKey(host, port);
}

export class UpstreamPool {
  private readonly h1Pools = new Map<string, H1Pool>();
  private readonly sessions = new Map<string, H2Connection>();
  private readonly muxSessions = new Map<string, MuxSession>();
  /** Endpoints that answered without weft-mux/1. */
  private readonly noMux = new Set<string>();
  private closed = false;

  constructor(
    private readonly limits: ProxyLimits,
    private readonly logger: Logger,
    /** The workload's SVID for mTLS endpoints; each new connection reads the current one. */
    readonly credentials: TlsCredentials,
  ) {}

  h1(host: string, port: number, tls?: UpstreamTls): H1Pool {
    const key = poolKey(host, port, tls);
    let pool = this.h1Pools.get(key);
    if (!pool) {
      let connectTo: ConnectFn | undefined;
      if (tls) {
        // One ALPN protocol: the server picks by it, and such a connection speaks only HTTP/1.1.
        const plain = (onread?: OnReadOpts): Socket =>
          this.credentials.connect(host, port, tls, ['http/1.1'], onread ? { onread } : {});
        // To another sidecar: a channel of the endpoint's mux connection, or an mTLS connection
        // of its own once the endpoint has answered that it does not speak weft-mux/1.
        connectTo = (onread) =>
          this.noMux.has(key) ? plain(onread) : this.muxChannel(key, host, port, tls, onread, plain);
      }
      pool = new H1Pool(
        host,
        port,
        {
          maxSockets: this.limits.upstreamMaxSocketsPerEndpoint,
          maxIdle: this.limits.upstreamMaxIdleSocketsPerEndpoint,
          // A shorter `Keep-Alive: timeout=` hint from the server is honoured per connection.
          idleTimeoutMs: this.limits.upstreamIdleTimeoutMs,
        },
        connectTo,
      );
      this.h1Pools.set(key, pool);
    }
    return pool;
  }

  private muxChannel(
    key: string,
    host: string,
    port: number,
    tls: UpstreamTls,
    onread: OnReadOpts,
    plain: () => Socket,
  ): Socket {
    let session = this.muxSessions.get(key);
    if (session === undefined || session.closed || session.goingAway) {
      const socket = this.credentials.connect(host, port, tls, [MUX_ALPN, 'http/1.1']);
      const s = new MuxSession(socket, undefined, false);
      socket.once('secureConnect', () => {
        if (socket.alpnProtocol === MUX_ALPN) return s.markConnected();
        // An older sidecar, or another proxy: HTTP/1.1 connections of their own from now on,
        // for the channels already opened too.
        this.noMux.add(key);
        if (this.muxSessions.get(key) === s) this.muxSessions.delete(key);
        s.fallBack(plain);
      });
      socket.once('close', () => {
        if (this.muxSessions.get(key) === s) this.muxSessions.delete(key);
      });
      this.muxSessions.set(key, s);
      session = s;
    }
    return session.open(onread) as unknown as Socket;
  }

  session(host: string, port: number, connectTimeoutMs: number, tls?: UpstreamTls): H2Connection {
    const key = poolKey(host, port, tls);
    const existing = this.sessions.get(key);
    if (existing && !existing.session.closed && !existing.session.destroyed) return existing;
    const session = http2.connect(`http://${endpointKey(host, port)}`, {
      settings: { enablePush: false },
      peerMaxConcurrentStreams: 1_000,
      ...(tls ? { createConnection: () => this.credentials.connect(host, port, tls, ['h2']) } : {}),
    });
    const conn: H2Connection = { session, connected: false };
    const forget = (): void => {
      if (this.sessions.get(key) === conn) this.sessions.delete(key);
    };
    const timer =
      connectTimeoutMs > 0
        ? setTimeout(() => {
            const err = Object.assign(new Error(`connect timeout after ${connectTimeoutMs} ms to ${key}`), {
              code: 'ETIMEDOUT',
            });
            conn.failure = err;
            session.destroy(err);
          }, connectTimeoutMs)
        : undefined;
    session.once('connect', () => {
      conn.connected = true;
      clearTimeout(timer);
    });
    session.on('error', (err: Error) => {
      conn.failure ??= err;
      forget();
      this.logger.debug({ endpoint: key, err: err.message }, 'upstream h2 session error');
    });
    session.on('goaway', forget);
    session.once('close', () => {
      clearTimeout(timer);
      forget();
    });
    // An idle session holds a socket and a slot at the peer; close it like an idle h1 socket.
    session.setTimeout(this.limits.upstreamIdleTimeoutMs, () => {
      forget();
      session.close();
    });
    this.sessions.set(key, conn);
    return conn;
  }

  /** Retires pools not in `live` (pool keys, see poolKey); open requests on them finish. */
  retain(live: Set<string>): void {
    for (const [key, pool] of this.h1Pools) {
      if (live.has(key)) continue;
      this.h1Pools.delete(key);
      pool.retire();
    }
    for (const [key, conn] of this.sessions) {
      if (live.has(key)) continue;
      this.sessions.delete(key);
      conn.session.close();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const pool of this.h1Pools.values()) pool.destroy();
    for (const conn of this.sessions.values()) conn.session.destroy();
    for (const s of this.muxSessions.values()) s.destroy();
    this.muxSessions.clear();
    this.h1Pools.clear();
    this.sessions.clear();
  }
}
