// An HTTP listener: accepts connections, picks the codec (HTTP/1.1, or h2c by its preface when
// the listener is `auto`), and hands each request — or each HTTP/1.1 Upgrade — to the proxy as a
// Downstream. Owns the per-listener limits: connection cap, request header size (431), header
// and request timeouts, keep-alive, HTTP/2 concurrent streams; mTLS termination (mtls.ts, with
// ALPN choosing the codec); and graceful drain. HTTP/1.1 is
// our own codec (downstream-h1.ts); HTTP/2 is Node's http2 server.

import http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { Logger } from '../../log.js';
import type { HttpListener } from '../runtime-config.js';
import { Acceptor } from './acceptor.js';
import { detectCodec } from './codec-detect.js';
import { Http2Downstream, type Downstream, type RequestHead } from './downstream.js';
import { H1Server, type H1ServerLimits } from './downstream-h1.js';
import type { ProxyLimits } from './limits.js';
import { proxyError, type LocalReply } from './local-reply.js';
import { InboundTls, inheritPeer, peerOf, type TlsCredentials } from './mtls.js';
import { MUX_ALPN, MuxSession } from './mux-session.js';
import type { PeerIdentity } from './peer-identity.js';

export interface HttpListenerHandlers {
  onRequest(ds: Downstream, listener: HttpListener): void;
  /** An HTTP/1.1 Upgrade: the socket is the handler's; `rest` holds the bytes read after the head. */
  onUpgrade(head: RequestHead, socket: Socket, rest: Buffer, listener: HttpListener): void;
  /** A request refused before routing (431 on HTTP/2), still answered through the proxy. */
  onRejected(ds: Downstream, listener: HttpListener, reply: LocalReply): void;
}

// HPACK accounting (RFC 9113 §6.5.2): name + value + 32 octets per field.
function headerListSize(headers: http2.IncomingHttpHeaders): number {
  let n = 0;
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    for (const s of Array.isArray(v) ? v : [v]) n += k.length + String(s).length + 32;
  }
  return n;
}

function tooLarge(limit: number): LocalReply {
  return proxyError(
    431,
    'WEFT_E_PROXY_HEADERS_TOO_LARGE',
    `request headers too large: the listener accepts at most ${limit} bytes of request headers`,
  );
}

function h1Limits(listener: HttpListener, limits: ProxyLimits): H1ServerLimits {
  const requestTimeoutMs = listener.requestTimeoutMs ?? limits.requestTimeoutMs;
  return {
    maxRequestHeadersBytes: listener.maxRequestHeadersBytes ?? limits.maxRequestHeadersBytes,
    requestTimeoutMs,
    // The head is part of the request: its own timeout is never the longer one.
    headersTimeoutMs:
      requestTimeoutMs > 0 ? Math.min(limits.headersTimeoutMs, requestTimeoutMs) : limits.headersTimeoutMs,
    keepAliveTimeoutMs: limits.downstreamKeepAliveTimeoutMs,
  };
}

export class HttpListenerServer {
  private readonly acceptor: Acceptor;
  private readonly h1: H1Server;
  private readonly h2: http2.Http2Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly muxSessions = new Set<MuxSession>();
  private readonly openStreams = new WeakMap<http2.Http2Session, number>();
  private draining = false;
  /** mTLS termination, when the listener has it (inbound listeners of a mesh with mTLS). */
  private inbound: InboundTls | undefined;
  /** The verified peer of each HTTP/2 session over mTLS (the session's socket is a proxy object). */
  private readonly sessionPeers = new WeakMap<http2.Http2Session, PeerIdentity>();
  /** The peer of the connection being handed to the HTTP/2 server (it emits 'session' in that call). */
  private handingOver: PeerIdentity | undefined;

  constructor(
    public listener: HttpListener,
    private readonly limits: ProxyLimits,
    private readonly handlers: HttpListenerHandlers,
    private readonly logger: Logger,
    private readonly credentials: TlsCredentials,
  ) {
    const maxHeader = listener.maxRequestHeadersBytes ?? limits.maxRequestHeadersBytes;
    this.h1 = new H1Server(
      h1Limits(listener, limits),
      {
        onRequest: (ds) => this.handlers.onRequest(ds, this.listener),
        onUpgrade: (head, socket, rest) => this.handlers.onUpgrade(head, socket, rest, this.listener),
      },
      logger,
    );

    this.h2 = http2.createServer({
      settings: {
        maxConcurrentStreams: limits.maxConcurrentStreams,
        // Above our own limit so an oversized header list reaches us and gets a 431, not a reset.
        maxHeaderListSize: maxHeader * 2 + 16 * 1024,
        enablePush: false,
      },
      maxSessionInvalidFrames: 1_000,
    });
    this.h2.on('session', (session: http2.ServerHttp2Session) => {
      this.sessions.add(session);
      if (this.handingOver) this.sessionPeers.set(session, this.handingOver);
      session.on('error', (err) =>
        this.logger.debug({ listener: this.listener.name, err: err.message }, 'h2 session error'),
      );
      session.once('close', () => this.sessions.delete(session));
      // Idle client connections are closed like idle HTTP/1.1 keep-alive ones; a connection
      // with a quiet but open stream (a long-lived gRPC stream) is not idle.
      session.setTimeout(this.limits.downstreamKeepAliveTimeoutMs, () => {
        if ((this.openStreams.get(session) ?? 0) === 0) session.close();
      });
      if (this.draining) session.close();
    });
    this.h2.on('stream', (stream, headers, flags) => {
      const session = stream.session;
      if (session) {
        this.openStreams.set(session, (this.openStreams.get(session) ?? 0) + 1);
        stream.once('close', () => this.openStreams.set(session, (this.openStreams.get(session) ?? 1) - 1));
      }
      this.onH2Stream(stream, headers, flags);
    });

    this.acceptor = new Acceptor(
      listener.name,
      listener.host,
      listener.port,
      limits.maxConnectionsPerListener,
      logger,
      (socket) => this.onConnection(socket),
    );
    this.configureTls(listener);
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

  /**
   * New settings for the same socket: route table, stream idle timeout (read per request),
   * request and header timeouts and the header size limit (open HTTP/1.1 connections get them
   * too, from their next request or timeout check).
   */
  update(listener: HttpListener): void {
    this.listener = listener;
    this.h1.update(h1Limits(listener, this.limits));
    this.configureTls(listener);
  }

  /** Turns mTLS on, off, or between STRICT and PERMISSIVE for new connections. */
  private configureTls(listener: HttpListener): void {
    const { credentials, logger } = this;
    const host = { credentials, logger, firstByteTimeoutMs: this.limits.firstByteTimeoutMs };
    this.inbound = InboundTls.reconcile(this.inbound, listener, host, (s, alpn) => this.afterTls(s, alpn));
  }

  /** Stops accepting; idle connections close now, busy ones after their current response. */
  async drain(): Promise<void> {
    this.draining = true;
    this.acceptor.stopAccepting();
    this.h1.drain();
    for (const s of this.sessions) s.close(); // GOAWAY: open streams finish, no new ones
    for (const s of this.muxSessions) s.drain(); // its channels drain as HTTP/1.1 connections
    await this.acceptor.whenIdle();
  }

  close(): void {
    this.draining = true;
    this.acceptor.destroyAll();
    for (const s of this.sessions) s.destroy();
    for (const s of this.muxSessions) s.destroy();
    this.h1.close();
    this.h2.close();
    this.inbound?.close();
  }

  private onConnection(socket: Socket): void {
    socket.on('error', (err) =>
      this.logger.debug({ listener: this.listener.name, err: err.message }, 'client socket error'),
    );
    if (this.inbound) return this.inbound.accept(socket);
    this.afterTls(socket, undefined);
  }

  /** A connection past mTLS (or plaintext): ALPN, else the listener's codec setting, decides. */
  private afterTls(socket: Socket, alpn: string | undefined): void {
    if (alpn === MUX_ALPN) return this.acceptMux(socket);
    if (alpn === 'h2') return this.dispatch(socket, 'http2');
    if (alpn === 'http/1.1') return this.dispatch(socket, 'http1');
    const codec = this.listener.codec;
    if (codec === 'http1') return this.dispatch(socket, 'http1');
    if (codec === 'http2') return this.dispatch(socket, 'http2');
    detectCodec(socket, this.limits.firstByteTimeoutMs).then(
      (c) => this.dispatch(socket, c),
      () => socket.destroy(),
    );
  }

  /** Another Weft sidecar's multiplexed connection: each channel is an HTTP/1.1 connection. */
  private acceptMux(socket: Socket): void {
    const session = new MuxSession(socket, (channel) => {
      const asSocket = channel as unknown as Socket;
      inheritPeer(asSocket, socket);
      this.h1.connection(asSocket);
    });
    this.muxSessions.add(session);
    socket.once('close', () => this.muxSessions.delete(session));
    if (this.draining) session.drain();
  }

  private dispatch(socket: Socket, codec: 'http1' | 'http2'): void {
    if (codec === 'http2') {
      socket.allowHalfOpen = false;
      this.handingOver = peerOf(socket);
      try {
        this.h2.emit('connection', socket);
      } finally {
        this.handingOver = undefined;
      }
    } else this.h1.connection(socket);
    // detectCodec paused the socket to put its first bytes back; let the server read them.
    socket.resume();
  }

  private onH2Stream(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    flags: number,
  ): void {
    stream.on('error', (err) =>
      this.logger.debug({ listener: this.listener.name, err: err.message }, 'h2 stream error'),
    );
    const ds = new Http2Downstream(stream, headers, flags, this.sessionPeers.get(stream.session!));
    const limit = this.listener.maxRequestHeadersBytes ?? this.limits.maxRequestHeadersBytes;
    if (headerListSize(headers) > limit) return this.handlers.onRejected(ds, this.listener, tooLarge(limit));
    this.handlers.onRequest(ds, this.listener);
  }
}
