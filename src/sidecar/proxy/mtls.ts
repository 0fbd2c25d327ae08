// Mutual TLS between sidecars, on both sides of the proxy. The workload's own credentials (its
// X.509-SVID, key and trust bundle) are set by the sidecar (Proxy.setIdentity) and never come
// through xDS; the config only says which listeners terminate mTLS and which endpoints expect
// it (SDS names `default` and `ROOTCA` stand for these local credentials).
//
// Inbound: a tls.Server that never listens terminates TLS on sockets the listener accepted
// (STRICT), or on those whose first byte is a TLS handshake record (PERMISSIVE). Only TLS 1.3,
// a client certificate chained to the bundle is required. Outbound: tls.connect with the SVID
// as client certificate and a server identity check against the cluster's expected SPIFFE IDs.
// On rotation new connections use the new SVID; connections already open carry on.

import { createHash, X509Certificate } from 'node:crypto';
import type { OnReadOpts, Socket } from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../../log.js';
import type { ListenerTls, UpstreamTls } from '../runtime-config.js';
import { uriSans } from '../../ca/spiffe-id.js';
import { MUX_ALPN } from './mux-session.js';
import { peerIdentityOf, type PeerIdentity } from './peer-identity.js';

/** What the proxy needs of the workload's SVID. */
export interface TlsIdentity {
  spiffeId: string;
  privateKeyPem: string;
  chainPem: string;
  trustBundlePem: string;
}

/** The first byte of a TLS record carrying a handshake (RFC 8446 §5.1, ContentType 22). */
const TLS_HANDSHAKE = 0x16;

// weft-mux/1 first: another Weft sidecar that offers it gets it (mux-session.ts); any other
// client (Envoy, gRPC, an older sidecar) does not offer it and gets what it did before.
const ALPN_DOWNSTREAM = [MUX_ALPN, 'h2', 'http/1.1'];

/** The verified peer of each socket that came over mTLS (read by the HTTP and TCP paths). */
const peers = new WeakMap<Socket, PeerIdentity>();

export function peerOf(socket: Socket | undefined): PeerIdentity | undefined {
  return socket === undefined ? undefined : peers.get(socket);
}

/** A channel of a mux connection carries the identity its connection was verified with. */
export function inheritPeer(channel: Socket, connection: Socket): void {
  const peer = peers.get(connection);
  if (peer !== undefined) peers.set(channel, peer);
}

/** The SPIFFE identity of a verified peer certificate, or undefined when it names none. */
export function identityOfCertificate(cert: tls.PeerCertificate | undefined): PeerIdentity | undefined {
  if (!cert?.raw) return undefined;
  const uris = uriSans(cert);
  // An X.509-SVID carries exactly one URI SAN.
  if (uris.length !== 1) return undefined;
  return peerIdentityOf(uris[0]!, createHash('sha256').update(cert.raw).digest('hex'));
}

/** The workload's credentials, shared by every listener and upstream pool of one proxy. */
export class TlsCredentials {
  private identity: TlsIdentity | undefined;
  private context: tls.SecureContext | undefined;
  private readonly servers = new Set<tls.Server>();

  constructor(private readonly logger: Logger) {}

  set(identity: TlsIdentity): void {
    this.identity = identity;
    this.context = tls.createSecureContext(this.secureOptions(identity));
    // Open connections keep the context they handshook with; new ones get this one.
    for (const s of this.servers) s.setSecureContext(this.secureOptions(identity));
    this.logger.info(
      { spiffeId: identity.spiffeId, serialNumber: new X509Certificate(identity.chainPem).serialNumber },
      'mTLS identity applied',
    );
  }

  get ready(): boolean {
    return this.identity !== undefined;
  }

  get spiffeId(): string | undefined {
    return this.identity?.spiffeId;
  }

  /** The SDS secret `ROOTCA` in Envoy's terms: PEM roots for verifying peers. */
  get trustBundlePem(): string | undefined {
    return this.identity?.trustBundlePem;
  }

  /** A TLS terminator for one inbound listener; close() releases it. */
  terminator(): tls.Server {
    const server = tls.createServer({
      ...(this.identity ? this.secureOptions(this.identity) : {}),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ALPN_DOWNSTREAM,
      handshakeTimeout: 10_000,
    });
    this.servers.add(server);
    server.once('close', () => this.servers.delete(server));
    return server;
  }

  release(server: tls.Server): void {
    this.servers.delete(server);
  }

  /**
   * An mTLS connection to an upstream sidecar: only TLS 1.3, our SVID as client certificate,
   * and the server must present one of the cluster's expected SPIFFE IDs.
   */
  connect(
    host: string,
    port: number,
    upstream: UpstreamTls,
    alpn: string[] | undefined,
    socketOptions: { allowHalfOpen?: boolean; onread?: OnReadOpts } = {},
  ): tls.TLSSocket {
    const context = this.context;
    if (!context) {
      // No SVID yet: a plaintext fallback would be a downgrade, so the connection fails.
      const err = Object.assign(new Error('no workload certificate yet: mTLS connection refused'), {
        code: 'WEFT_E_PROXY_NO_IDENTITY',
      });
      const socket = new tls.TLSSocket(null as unknown as Socket);
      process.nextTick(() => socket.destroy(err));
      return socket;
    }
    const socket = tls.connect({
      ...socketOptions,
      host,
      port,
      secureContext: context,
      servername: upstream.sni,
      ...(alpn ? { ALPNProtocols: alpn } : {}),
      checkServerIdentity: (_name, cert) => {
        const peer = identityOfCertificate(cert);
        if (peer && upstream.expectedSpiffeIds.includes(peer.spiffeId)) return undefined;
        return Object.assign(
          new Error(
            `upstream ${host}:${port} presented ${peer?.spiffeId ?? 'no SPIFFE ID'}, expected one of ${upstream.expectedSpiffeIds.join(', ')}`,
          ),
          { code: 'WEFT_E_PROXY_PEER_IDENTITY' },
        );
      },
    });
    socket.setNoDelay(true);
    return socket;
  }

  private secureOptions(identity: TlsIdentity): tls.SecureContextOptions {
    return {
      key: identity.privateKeyPem,
      cert: identity.chainPem,
      ca: identity.trustBundlePem,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
    };
  }
}

/**
 * Terminates mTLS on an accepted socket (or, in PERMISSIVE mode, lets plaintext through) and
 * hands the resulting socket on. The handler gets the TLS socket, with its verified peer
 * recorded for peerOf(), or the raw socket for plaintext.
 */
export class InboundTls {
  private readonly server: tls.Server;

  constructor(
    private readonly credentials: TlsCredentials,
    private config: ListenerTls,
    private readonly listenerName: string,
    private readonly firstByteTimeoutMs: number,
    private readonly logger: Logger,
    private readonly onSocket: (socket: Socket, alpn: string | undefined) => void,
  ) {
    this.server = credentials.terminator();
    this.server.on('secureConnection', (socket: tls.TLSSocket) => this.onSecure(socket));
    this.server.on('tlsClientError', (err, socket) => {
      this.logger.debug({ listener: this.listenerName, err: err.message }, 'mTLS handshake refused');
      socket.destroy();
    });
  }

  /**
   * What a listener's mTLS should be now: `current` kept with the listener's new settings, a new
   * one, or none (closed) when the listener has no TLS. Only new connections see the change.
   */
  static reconcile(
    current: InboundTls | undefined,
    listener: { name: string; tls?: ListenerTls },
    host: { credentials: TlsCredentials; firstByteTimeoutMs: number; logger: Logger },
    onSocket: (socket: Socket, alpn: string | undefined) => void,
  ): InboundTls | undefined {
    const config = listener.tls;
    if (!config) {
      current?.close();
      return undefined;
    }
    if (!current) {
      const { credentials, firstByteTimeoutMs, logger } = host;
      return new InboundTls(credentials, config, listener.name, firstByteTimeoutMs, logger, onSocket);
    }
    current.config = config;
    return current;
  }

  close(): void {
    this.credentials.release(this.server);
  }

  accept(socket: Socket): void {
    if (!this.credentials.ready) {
      this.logger.warn({ listener: this.listenerName }, 'no workload certificate yet: connection refused');
      socket.destroy();
      return;
    }
    if (this.config.mode === 'STRICT') {
      this.server.emit('connection', socket);
      return;
    }
    sniffTls(socket, this.firstByteTimeoutMs).then(
      (isTls) => {
        if (isTls) this.server.emit('connection', socket);
        else this.onSocket(socket, undefined);
        socket.resume();
      },
      () => socket.destroy(),
    );
  }

  private onSecure(socket: tls.TLSSocket): void {
    // rejectUnauthorized already refused unverified clients; this also refuses a verified
    // certificate that names no SPIFFE ID, so every mTLS connection has a peer identity.
    const peer = socket.authorized ? identityOfCertificate(socket.getPeerCertificate()) : undefined;
    if (!peer) {
      this.logger.debug({ listener: this.listenerName }, 'mTLS client without a SPIFFE ID refused');
      socket.destroy();
      return;
    }
    peers.set(socket, peer);
    // As for plaintext connections: the codec (or the TCP proxy) decides what a FIN means.
    socket.allowHalfOpen = true;
    const alpn = typeof socket.alpnProtocol === 'string' ? socket.alpnProtocol : undefined;
    this.onSocket(socket, alpn);
  }
}

/** Whether the connection starts with a TLS handshake record; the byte is put back. */
function sniffTls(socket: Socket, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onGone);
      socket.off('end', onGone);
    };
    const onData = (chunk: Buffer): void => {
      cleanup();
      socket.pause();
      socket.unshift(chunk);
      resolve(chunk[0] === TLS_HANDSHAKE);
    };
    const onGone = (): void => {
      cleanup();
      reject(new Error('connection closed before its first byte'));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no bytes within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', onData);
    socket.once('close', onGone);
    socket.once('end', onGone);
  });
}
