// An HTTP listener: accepts connections, picks the codec (HTTP/1.1, or h2c by its preface when
// the listener is `auto`), and hands each request — or each HTTP/1.1 Upgrade — to the proxy as a
// Downstream. Owns the per-listener limits: connection cap, request header size (431), header
// and request timeouts, keep-alive, HTTP/2 concurrent streams; and graceful drain.

import http from 'node:http';
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../log.js';
import type { HttpListener } from '../runtime-config.js';
import { Acceptor } from './acceptor.js';
import { detectCodec } from './codec-detect.js';
import { Http1Downstream, Http2Downstream, type Downstream } from './downstream.js';
import type { ProxyLimits } from './limits.js';
import { proxyError, type LocalReply } from './local-reply.js';
import { writeRawReply } from './upgrade-tunnel.js';

export interface HttpListenerHandlers {
  onRequest(ds: Downstream, listener: HttpListener): void;
  onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, listener: HttpListener): void;
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

/**
 * Node checks request and header timeouts only every connectionsCheckingInterval (30 s by
 * default), so a 1 s request timeout would fire up to 30 s late: check at a quarter of the
 * shortest timeout, but not more often than every 250 ms (each check walks every connection).
 */
function h1Timeouts(
  listener: HttpListener,
  limits: ProxyLimits,
): { requestTimeout: number; headersTimeout: number; connectionsCheckingInterval: number } {
  const requestTimeout = listener.requestTimeoutMs ?? limits.requestTimeoutMs;
  // Node insists on headersTimeout ≤ requestTimeout when the latter is on.
  const headersTimeout =
    requestTimeout > 0 ? Math.min(limits.headersTimeoutMs, requestTimeout) : limits.headersTimeoutMs;
  const shortest = requestTimeout > 0 ? Math.min(requestTimeout, headersTimeout) : headersTimeout;
  const connectionsCheckingInterval = Math.min(30_000, Math.max(250, Math.floor(shortest / 4)));
  return { requestTimeout, headersTimeout, connectionsCheckingInterval };
}

export class HttpListenerServer {
  private readonly acceptor: Acceptor;
  private readonly h1: http.Server;
  private readonly h2: http2.Http2Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly openStreams = new WeakMap<http2.Http2Session, number>();
  private draining = false;

  constructor(
    public listener: HttpListener,
    private readonly limits: ProxyLimits,
    private readonly handlers: HttpListenerHandlers,
    private readonly logger: Logger,
  ) {
    const maxHeader = listener.maxRequestHeadersBytes ?? limits.maxRequestHeadersBytes;
    const timeouts = h1Timeouts(listener, limits);
    this.h1 = http.createServer({
      maxHeaderSize: maxHeader,
      ...timeouts,
      keepAliveTimeout: limits.downstreamKeepAliveTimeoutMs,
      // An absolute-form request line carries the authority; Host may legitimately be absent.
      requireHostHeader: false,
      noDelay: true,
    });
    this.h1.on('request', (req, res) => this.onH1Request(req, res));
    // Listening for checkContinue stops Node from answering 100 itself: the upstream decides.
    this.h1.on('checkContinue', (req, res) => this.onH1Request(req, res));
    this.h1.on('upgrade', (req, socket, head) => this.handlers.onUpgrade(req, socket, head, this.listener));
    this.h1.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) =>
      this.onClientError(err, socket),
    );
    // Node sets up its per-connection timeout bookkeeping on 'listening'; this server never
    // listens itself (connections come from the acceptor), so start the bookkeeping by hand.
    this.h1.emit('listening');

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
   * request and header timeouts (Node reads them at each check, so open connections get them
   * too); the header size limit applies to new connections.
   */
  update(listener: HttpListener): void {
    this.listener = listener;
    const h1 = this.h1 as http.Server & { maxHeaderSize?: number; connectionsCheckingInterval: number };
    // Node reads the server's maxHeaderSize when it sets up each connection's parser.
    h1.maxHeaderSize = listener.maxRequestHeadersBytes ?? this.limits.maxRequestHeadersBytes;
    const t = h1Timeouts(listener, this.limits);
    h1.requestTimeout = t.requestTimeout;
    h1.headersTimeout = t.headersTimeout;
    if (h1.connectionsCheckingInterval !== t.connectionsCheckingInterval) {
      h1.connectionsCheckingInterval = t.connectionsCheckingInterval;
      // Node (re)starts its checker on 'listening', clearing the old one: see the constructor.
      h1.emit('listening');
    }
  }

  /** Stops accepting; idle connections close now, busy ones after their current response. */
  async drain(): Promise<void> {
    this.draining = true;
    this.acceptor.stopAccepting();
    this.h1.closeIdleConnections();
    for (const s of this.sessions) s.close(); // GOAWAY: open streams finish, no new ones
    await this.acceptor.whenIdle();
  }

  close(): void {
    this.draining = true;
    this.acceptor.destroyAll();
    for (const s of this.sessions) s.destroy();
    this.h1.close();
    this.h2.close();
  }

  private onConnection(socket: Socket): void {
    socket.on('error', (err) =>
      this.logger.debug({ listener: this.listener.name, err: err.message }, 'client socket error'),
    );
    const codec = this.listener.codec;
    if (codec === 'http1') return this.dispatch(socket, 'http1');
    if (codec === 'http2') return this.dispatch(socket, 'http2');
    detectCodec(socket, this.limits.firstByteTimeoutMs).then(
      (c) => this.dispatch(socket, c),
      () => socket.destroy(),
    );
  }

  private dispatch(socket: Socket, codec: 'http1' | 'http2'): void {
    if (codec === 'http2') {
      socket.allowHalfOpen = false;
      this.h2.emit('connection', socket);
    } else this.h1.emit('connection', socket);
    // detectCodec paused the socket to put its first bytes back; let the server read them.
    socket.resume();
  }

  private onH1Request(req: http.IncomingMessage, res: http.ServerResponse): void {
    const ds = new Http1Downstream(req, res, () => this.draining);
    this.handlers.onRequest(ds, this.listener);
  }

  private onH2Stream(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    flags: number,
  ): void {
    stream.on('error', (err) =>
      this.logger.debug({ listener: this.listener.name, err: err.message }, 'h2 stream error'),
    );
    const ds = new Http2Downstream(stream, headers, flags);
    const limit = this.listener.maxRequestHeadersBytes ?? this.limits.maxRequestHeadersBytes;
    if (headerListSize(headers) > limit) return this.handlers.onRejected(ds, this.listener, tooLarge(limit));
    this.handlers.onRequest(ds, this.listener);
  }

  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    // A response already started on this connection (a request timeout while the upload is
    // still streaming, say): a status line now would land inside its body. Only a cut is honest.
    const inProgress = (socket as { _httpMessage?: http.ServerResponse | null })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inProgress?.headersSent === true) {
      socket.destroy();
      return;
    }
    const limit = this.listener.maxRequestHeadersBytes ?? this.limits.maxRequestHeadersBytes;
    const reply =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? tooLarge(limit)
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? proxyError(
              408,
              'WEFT_E_PROXY_BAD_REQUEST',
              'request timeout: the request was not received in time',
            )
          : proxyError(400, 'WEFT_E_PROXY_BAD_REQUEST', `bad request: ${err.message}`);
    writeRawReply(socket, reply);
  }
}
