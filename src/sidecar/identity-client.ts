// The sidecar's identity: its own key (made here, kept in this process), an X.509-SVID for it
// from the control plane's CA, and the control plane's workload API reached over TLS 1.3 with
// that SVID as the client certificate. The first SVID is paid for with a join token, over TLS
// checked against the roots bootstrap-trust.ts settles on (the token's CA pin decides); each
// later one (at half the lifetime) with the SVID it replaces, on a fresh key. The roots to trust
// come with each SVID, and, between renewals, from the control plane's SDS push over the xDS
// stream (applyPushedBundle): while that stream is up its bundle is the one in force, so that an
// SVID answer computed a moment before a rotation step cannot undo it. When the push says the CA
// signs under another root than this SVID's (a rotation was activated), the SVID is renewed
// within seconds rather than at its half-life. 'rotated' tells the users of the credentials
// (the proxy's TLS, the xDS channel) to load the new ones. The control plane is known by its
// fixed SPIFFE ID in the trust domain, never by what the plain HTTP info answer says it is.

import { X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { ChannelTls } from '../xds/grpc-channel.js';
import { newWorkloadKey, workloadCsr } from '../ca/pkcs10.js';
import { CONTROL_PLANE_IDENTITY, spiffeServerCheck, workloadSpiffeId } from '../ca/spiffe-id.js';
import { WeftError } from '../errors.js';
import type { Logger } from '../log.js';
import { systemClock } from '../store/clock.js';
import { bootstrapTrust, type BootstrapTrust, type GivenBundle } from './bootstrap-trust.js';

/** What the control plane's /api/v1/info says a joining sidecar needs. */
export interface JoinInfo {
  xdsAddress: string;
  trustDomain: string;
  /** `https://host:port` of the workload API. */
  workloadApi: string;
  /** The SPIFFE ID the control plane's TLS listeners present. */
  controlPlaneId: string;
  /** PEM roots. */
  trustBundle: string;
}

export interface Svid {
  spiffeId: string;
  /** PKCS#8 PEM, never sent anywhere. */
  privateKeyPem: string;
  /** The SVID and its intermediates (node:tls `cert`). */
  chainPem: string;
  /** The roots (node:tls `ca`). */
  trustBundlePem: string;
  notAfter: Date;
  renewAt: Date;
}

export interface IdentityClientOptions {
  info: JoinInfo;
  namespace: string;
  serviceAccount: string;
  /** The join token; needed only until the first SVID is in hand. */
  token: string | undefined;
  /** Roots to trust instead of `info.trustBundle` (--trust-bundle FILE). */
  trustBundle?: GivenBundle | undefined;
  logger: Logger;
  /**
   * Asks the control plane's REST API again where things are: after a restart the workload API
   * may listen elsewhere. Only addresses are taken from it, never trust.
   */
  refreshInfo?: () => Promise<JoinInfo>;
}

export interface ApiAnswer {
  status: number;
  json: unknown;
}

/**
 * How long after a push that moved the CA's signing root a sidecar renews at the latest (a
 * random moment within it, so a mesh's sidecars do not all ask at once).
 */
export const SIGNER_CHANGE_RENEWAL_SPREAD_MS = 5000;

export class IdentityClient extends EventEmitter<{ rotated: [Svid] }> {
  /** The last SVID, with the bundle in force (see applyPushedBundle). */
  private svid: Svid | undefined;
  /** The roots in force: the last SVID answer's, or the pushed ones while the push is live. */
  private bundle: string | undefined;
  /** The xDS stream is up and has sent a bundle: its pushes decide, not SVID answers. */
  private pushLive = false;
  /** Cancels the pending renewal (or retry). */
  private cancelTimer: () => void = () => undefined;
  private closed = false;
  /** What the first call trusts; set by start(). */
  private bootstrap: BootstrapTrust | undefined;
  /**
   * Connections to the workload API are kept open between calls: a lease keepalive every few
   * seconds would otherwise be a full mutual-TLS handshake each time, for this sidecar and for
   * the control plane, which answers every sidecar's. The agent pools by TLS options (roots,
   * certificate, key), so a renewed SVID or a new trust bundle gets a connection of its own,
   * verified afresh; one idle for 4 s is closed.
   */
  private readonly agent = new HttpsAgent({
    keepAlive: true,
    maxSockets: 4,
    maxFreeSockets: 1,
    // Idle connections are dropped after 4 s, before the server's 5 s keep-alive timeout would
    // close one under a request on its way (lease keepalives come every third of the TTL).
    timeout: 4000,
  });
  readonly spiffeId: string;
  /** Whom the workload API and xDS servers must prove to be. */
  readonly controlPlaneId: string;

  constructor(private opts: IdentityClientOptions) {
    super();
    this.spiffeId = workloadSpiffeId(opts.info.trustDomain, {
      namespace: opts.namespace,
      serviceAccount: opts.serviceAccount,
    });
    this.controlPlaneId = workloadSpiffeId(opts.info.trustDomain, CONTROL_PLANE_IDENTITY);
  }

  /** The current SVID and the roots in force; throws before start() has obtained the first. */
  current(): Svid {
    if (!this.svid) throw new WeftError('WEFT_E_INTERNAL', 'the sidecar has no SVID yet');
    return this.svid;
  }

  /**
   * The first SVID, with the join token. Before the token leaves this process, the trust bundle
   * is held to the token's CA pin (WEFT_E_CA_PIN_MISMATCH) and the workload API must prove it
   * is the control plane under the roots that leaves (WEFT_E_CONTROL_PLANE_UNTRUSTED). Other
   * errors say what the control plane refused and why.
   */
  async start(): Promise<Svid> {
    const { info, token, logger } = this.opts;
    if (token === undefined) {
      throw new WeftError(
        'WEFT_E_UNAUTHENTICATED',
        'the sidecar needs a join token for its first SVID: pass --token-file FILE or set WEFT_TOKEN ' +
          `(create one with \`weft token create --service-account ${this.opts.serviceAccount}` +
          `${this.opts.namespace === 'default' ? '' : ` -n ${this.opts.namespace}`}\`)`,
      );
    }
    const trust = bootstrapTrust({
      token,
      infoBundle: info.trustBundle,
      given: this.opts.trustBundle,
      serviceAccount: this.opts.serviceAccount,
      namespace: this.opts.namespace,
    });
    if (trust.basis === 'first-use')
      logger.warn(
        { workloadApi: info.workloadApi },
        'the join token has no CA pin: the trust bundle was taken on first use from the control ' +
          "plane's plain-HTTP /api/v1/info, which anyone on the network path could have replaced; " +
          'use a token from `weft token create` (it carries the pin) or pass --trust-bundle FILE',
      );
    if (info.controlPlaneId !== this.controlPlaneId)
      throw new WeftError(
        'WEFT_E_CONTROL_PLANE_UNTRUSTED',
        `/api/v1/info names the control plane ${String(info.controlPlaneId)}, but a Weft control plane ` +
          `of trust domain ${info.trustDomain} is always ${this.controlPlaneId}; not trusting it: ` +
          'check the --control-plane URL and the network path to it',
      );
    this.bootstrap = trust;
    let svid: Svid;
    try {
      svid = await this.obtain(token);
    } catch (e) {
      throw this.untrusted(e, trust) ?? e;
    }
    this.install(svid);
    return svid;
  }

  /**
   * TLS for a connection to the control plane's xDS port: our current SVID as the client
   * certificate, the server held to the control plane's SPIFFE ID. SNI is the trust domain:
   * the address is usually an IP, which SNI may not carry.
   */
  xdsTls(): ChannelTls {
    const svid = this.current();
    return {
      ca: svid.trustBundlePem,
      key: svid.privateKeyPem,
      cert: svid.chainPem,
      servername: this.opts.info.trustDomain,
      checkServerIdentity: this.isControlPlane('the xDS server'),
    };
  }

  /** node:tls checkServerIdentity: the control plane is known by its SPIFFE ID, not a host name. */
  private isControlPlane(server: string): ReturnType<typeof spiffeServerCheck> {
    const expected = this.controlPlaneId;
    return spiffeServerCheck((id) => id === expected, {
      server,
      expected,
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
  }

  close(): void {
    this.closed = true;
    this.cancelTimer();
    this.agent.destroy();
  }

  /**
   * A trust bundle the control plane pushed over the xDS stream (SDS `ROOTCA`), which is mutual
   * TLS to the control plane's SPIFFE ID: it replaces the roots in force, for calls to the
   * control plane and for peers, until the stream is lost (pushedBundleStale). If its first root
   * (the one the CA signs under) is new and did not sign this SVID, the SVID is renewed soon.
   */
  applyPushedBundle(pem: string): void {
    this.pushLive = true;
    const before = this.bundle;
    if (this.closed || (before !== undefined && sameCertificates(pem, before))) return;
    this.bundle = pem;
    const svid = this.svid;
    if (!svid) return;
    const roots = splitCertificates(pem);
    const ownRootTrusted = roots.some((r) => chainsTo(svid.chainPem, r));
    this.opts.logger.info(
      { roots: roots.length, ownRootTrusted },
      'trust bundle updated by the control plane',
    );
    if (!ownRootTrusted)
      this.opts.logger.warn(
        { spiffeId: svid.spiffeId },
        "the trust bundle no longer holds the root of this sidecar's SVID (the rotation's overlap was " +
          'ended early): peers refuse it, and the control plane will not renew it; restart the sidecar ' +
          'with a new join token',
      );
    this.publish();
    const signer = roots[0];
    const signerMoved =
      signer !== undefined && !sameCertificates(signer, splitCertificates(before ?? '')[0] ?? '');
    if (signerMoved && ownRootTrusted && !chainsTo(svid.chainPem, signer)) {
      const inMs = Math.floor(Math.random() * SIGNER_CHANGE_RENEWAL_SPREAD_MS);
      this.opts.logger.info({ inMs }, 'the CA signs under a new root: renewing the SVID early');
      this.schedule(Math.min(inMs, svid.renewAt.getTime() - Date.now()));
    }
  }

  /** The xDS stream is gone: SVID answers bring the roots again until the next push. */
  pushedBundleStale(): void {
    this.pushLive = false;
  }

  /**
   * A call to the workload API over TLS: the server must present the control plane's SPIFFE ID
   * under our trust bundle; we present our SVID (or, with `token`, a join token instead).
   */
  async call(method: string, path: string, body?: unknown, token?: string): Promise<ApiAnswer> {
    try {
      return await this.callFresh(method, path, body, token);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (!this.opts.refreshInfo || (code !== 'ECONNREFUSED' && code !== 'ECONNRESET')) throw e;
      const fresh = await this.opts.refreshInfo();
      if (fresh.workloadApi === this.opts.info.workloadApi) throw e;
      this.opts.logger.info(
        { workloadApi: fresh.workloadApi },
        'the workload API moved; using its new address',
      );
      this.opts.info = { ...this.opts.info, workloadApi: fresh.workloadApi, xdsAddress: fresh.xdsAddress };
      return this.callFresh(method, path, body, token);
    }
  }

  /**
   * One call. A kept-open connection that fails before any answer (the server closed it as idle
   * just as the request went out) is replaced by a new connection of this call's own, and the
   * request sent once more. Every call that reuses connections may be repeated: keepalives and
   * applies are idempotent, a repeated revocation finds the lease gone, a lease granted twice
   * leaves one to expire unused, and an SVID request issues one more certificate for the same
   * key. A call with a join token (which may be single-use) always has a connection of its own.
   */
  private async callFresh(method: string, path: string, body?: unknown, token?: string): Promise<ApiAnswer> {
    try {
      return await this.callOnce(method, path, body, token, token === undefined);
    } catch (e) {
      if (e instanceof StaleConnection) return this.callOnce(method, path, body, token, false);
      throw e;
    }
  }

  /** `pooled`: on a kept-open connection when one is free; otherwise on a connection of its own. */
  private callOnce(
    method: string,
    path: string,
    body: unknown,
    token: string | undefined,
    pooled: boolean,
  ): Promise<ApiAnswer> {
    const { info } = this.opts;
    const url = new URL(path, info.workloadApi);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const svid = this.svid;
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        url,
        {
          method,
          ca: this.bundle ?? this.bootstrap?.pem ?? '',
          ...(svid && token === undefined ? { key: svid.privateKeyPem, cert: svid.chainPem } : {}),
          minVersion: 'TLSv1.3',
          checkServerIdentity: this.isControlPlane('the workload API'),
          headers: {
            ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
            ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
          },
          agent: pooled ? this.agent : false,
          timeout: 5000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            try {
              resolve({
                status: res.statusCode ?? 0,
                json: text === '' ? {} : (JSON.parse(text) as unknown),
              });
            } catch {
              reject(new Error(`the workload API answered ${res.statusCode} with a body that is not JSON`));
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('the workload API did not answer within 5 s')));
      req.on('error', (err: NodeJS.ErrnoException) =>
        reject(req.reusedSocket && STALE_CODES.has(err.code ?? '') ? new StaleConnection(err.message) : err),
      );
      req.end(payload);
    });
  }

  /** A failed TLS check of the workload API as a WeftError saying what it was checked against; else undefined. */
  private untrusted(e: unknown, trust: BootstrapTrust): WeftError | undefined {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === undefined || !TLS_VERIFY_CODES.has(code)) return undefined;
    const impostor = 'something may be impersonating the control plane';
    const advice = {
      pinned:
        'If the CA root was rotated since the token was made, the control plane now presents a ' +
        `certificate of the new root: make a new token with \`weft token create\`. Otherwise ${impostor}`,
      given:
        `Does ${trust.source} hold the mesh's current root (the one the control plane's certificate ` +
        `chains to)? Otherwise ${impostor}`,
      'first-use': `Something may be impersonating the control plane`,
    }[trust.basis];
    return new WeftError(
      'WEFT_E_CONTROL_PLANE_UNTRUSTED',
      `the workload API at ${this.opts.info.workloadApi} did not prove it is the control plane ` +
        `(${this.controlPlaneId}) under ${trust.source}: ${(e as Error).message} (${code}). ` +
        `The join token was not sent. ${advice}`,
    );
  }

  private async obtain(token: string | undefined): Promise<Svid> {
    const key = newWorkloadKey();
    const csr = workloadCsr(key, this.spiffeId);
    const res = await this.call('POST', '/api/v1/svids', { csr }, token);
    if (res.status !== 200) {
      const err = res.json as { code?: string; message?: string };
      throw new WeftError(
        res.status === 401
          ? 'WEFT_E_UNAUTHENTICATED'
          : res.status === 403
            ? 'WEFT_E_FORBIDDEN'
            : 'WEFT_E_UNAVAILABLE',
        `the control plane refused the SVID for ${this.spiffeId}: ${err.code ?? res.status} ${err.message ?? ''}`.trim(),
      );
    }
    const got = res.json as {
      spiffeId: string;
      chainPem: string;
      trustBundlePem: string;
      notAfter: string;
      renewAt: string;
    };
    if (got.spiffeId !== this.spiffeId)
      throw new WeftError(
        'WEFT_E_INTERNAL',
        `the control plane issued ${got.spiffeId}, not ${this.spiffeId}`,
      );
    return {
      spiffeId: got.spiffeId,
      privateKeyPem: key.privateKeyPem,
      chainPem: got.chainPem,
      trustBundlePem: got.trustBundlePem,
      notAfter: new Date(got.notAfter),
      renewAt: new Date(got.renewAt),
    };
  }

  private install(svid: Svid): void {
    // The answer's bundle counts unless a live push already decides (it may be newer).
    if (!this.pushLive || this.bundle === undefined) this.bundle = svid.trustBundlePem;
    this.svid = svid;
    this.opts.logger.info({ spiffeId: svid.spiffeId, notAfter: svid.notAfter }, 'SVID in force');
    this.schedule(svid.renewAt.getTime() - Date.now());
    this.publish();
  }

  /** The SVID with the roots in force, to every user of the credentials. */
  private publish(): void {
    if (!this.svid || this.bundle === undefined) return;
    this.svid = { ...this.svid, trustBundlePem: this.bundle };
    this.emit('rotated', this.svid);
  }

  private schedule(ms: number): void {
    this.cancelTimer();
    if (this.closed) return;
    this.cancelTimer = systemClock.setTimer(() => void this.renew(), Math.max(0, ms));
  }

  /** Renews with the current SVID; on failure retries (every 1–30 s) until it expires. */
  private async renew(attempt = 0): Promise<void> {
    if (this.closed) return;
    try {
      this.install(await this.obtain(undefined));
    } catch (e) {
      const left = (this.svid?.notAfter.getTime() ?? 0) - Date.now();
      this.opts.logger.warn({ err: (e as Error).message, msLeft: left }, 'SVID renewal failed; retrying');
      if (this.closed) return;
      this.cancelTimer();
      this.cancelTimer = systemClock.setTimer(
        () => void this.renew(attempt + 1),
        Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5)),
      );
    }
  }
}

function splitCertificates(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n?/g) ?? [];
}

/** The same certificates in the same order, whatever the line breaks of their PEM. */
function sameCertificates(a: string, b: string): boolean {
  const bodies = (pem: string): string =>
    splitCertificates(pem)
      .map((c) => c.replace(/-----[^-]+-----|\s/g, ''))
      .join('|');
  return bodies(a) === bodies(b);
}

/** Whether the top of `chainPem` (the leaf, or its last intermediate) was issued by `rootPem`. */
function chainsTo(chainPem: string, rootPem: string): boolean {
  const top = splitCertificates(chainPem).at(-1);
  if (top === undefined) return false;
  try {
    const cert = new X509Certificate(top);
    const root = new X509Certificate(rootPem);
    return cert.checkIssued(root) && cert.verify(root.publicKey);
  } catch {
    return false;
  }
}

/** How a reused connection the server had closed fails: reset, or written to after its close. */
const STALE_CODES = new Set(['ECONNRESET', 'EPIPE']);

/** A reused connection failed before any answer (callFresh() retries on a new one). */
class StaleConnection extends Error {
  override name = 'StaleConnection';
}

/** How node:tls reports a server certificate that did not verify (OpenSSL's names, and node's own). */
const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);
