// The Weft sidecar, assembled: xDS agent → proxy, an admin server, and the workload's
// registration. The order of its life is what other meshes get wrong most often:
//   start     ask the control plane where xDS is; take config; open the listeners
//             (the proxy serves the app's outbound calls from here on);
//   register  only once the app answers on its port, so no mesh traffic arrives before it can
//             be served — the Workload is bound to a lease that dies with the sidecar;
//   shutdown  deregister first (every proxy drops this endpoint), keep serving inbound for a
//             short grace while that propagates, then drain: stop accepting, finish in-flight
//             requests, close. The outbound side stays up until the very end, so the app's own
//             in-flight calls finish too.

import { X509Certificate } from 'node:crypto';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import type { Logger } from '../log.js';
import { WeftError } from '../errors.js';
import { AdminServer } from './admin-server.js';
import { Proxy } from './proxy/proxy.js';
import { Registration } from './registration.js';
import type { GivenBundle } from './bootstrap-trust.js';
import { IdentityClient, type JoinInfo, type Svid } from './identity-client.js';
import { XdsAgent } from './xds-agent.js';

export type AppProtocol = 'HTTP' | 'HTTP2' | 'GRPC' | 'TCP';

export interface SidecarOptions {
  service: string;
  namespace: string;
  /** Workload name; default `<service>-<host>-<inbound port>`. */
  name?: string;
  labels: Record<string, string>;
  serviceAccount: string;
  /** The app's port on 127.0.0.1; absent for a client-only workload (a batch job). */
  appPort?: number;
  protocol: AppProtocol;
  /** Control plane REST API URL. */
  controlPlane: string;
  /** Join token for the first SVID (--token-file / WEFT_TOKEN). */
  token?: string | undefined;
  /** Roots to trust instead of the bundle in /api/v1/info (--trust-bundle / WEFT_TRUST_BUNDLE). */
  trustBundle?: GivenBundle | undefined;
  /** xDS address; default: what the control plane's /api/v1/info says. */
  xdsAddr?: string;
  outboundAddr: string;
  inboundAddr: string;
  adminAddr: string;
  /** Address other proxies reach the inbound listener at; default its host, or 127.0.0.1. */
  advertiseAddr?: string;
  /** Opaque TCP upstreams: `svc[.ns]:port=localPort`. */
  upstreams: string[];
  drainTimeoutMs: number;
  leaseTtlSeconds: number;
  logger: Logger;
}

interface HostPort {
  host: string;
  port: number;
}

function parseAddr(text: string, flag: string): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port > 65535) {
    throw new WeftError(
      'WEFT_E_BAD_REQUEST',
      `${flag} must be HOST:PORT (port 0 picks a free one), got "${text}"`,
    );
  }
  return { host: (m[1] ?? m[2])!, port };
}

function formatAddr(a: HostPort): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** A DNS-1123 name from anything: lowercase, `-` for the rest, trimmed to 63. */
function dnsName(text: string): string {
  return (
    text
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 63)
      .replace(/-+$/, '') || 'workload'
  );
}

/**
 * GETs a JSON document. Not `fetch`: that would load undici, and compiling its WebAssembly HTTP
 * parser leaves a sidecar with ~15 MiB more resident memory for the rest of its life.
 */
async function getJson(url: string, timeoutMs: number): Promise<unknown> {
  const target = new URL(url);
  const { request } = target.protocol === 'https:' ? await import('node:https') : await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request(target, { agent: false, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 299) return reject(new Error(`HTTP ${status}`));
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (e) {
          reject(e as Error);
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function fetchInfo(controlPlane: string, log: Logger, signal: AbortSignal): Promise<JoinInfo> {
  let delay = 200;
  for (;;) {
    try {
      return (await getJson(`${controlPlane}/api/v1/info`, 3000)) as JoinInfo;
    } catch (e) {
      if (signal.aborted)
        throw new WeftError('WEFT_E_UNAVAILABLE', 'stopped before the control plane answered');
      log.warn({ controlPlane, err: (e as Error).message }, 'control plane not reachable yet; retrying');
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }
}

/** True if something accepts TCP connections on 127.0.0.1:port within the timeout. */
export function portAnswers(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export class Sidecar {
  private registration: Registration | undefined;
  private stopping: Promise<void> | undefined;
  private readonly abort = new AbortController();

  private constructor(
    private readonly opts: SidecarOptions,
    private readonly agent: XdsAgent,
    private readonly proxy: Proxy,
    private readonly admin: AdminServer,
    readonly adminAddress: HostPort,
    readonly identity: IdentityClient,
  ) {}

  /** Starts and resolves once the first config is in force and every listener is bound. */
  static async start(opts: SidecarOptions): Promise<Sidecar> {
    const log = opts.logger;
    const outbound = parseAddr(opts.outboundAddr, '--outbound-addr');
    const inbound = parseAddr(opts.inboundAddr, '--inbound-addr');
    const adminAddr = parseAddr(opts.adminAddr, '--admin-addr');
    for (const u of opts.upstreams) {
      if (!/^[a-z0-9][-a-z0-9.]*:\d{1,5}=\d{1,5}$/.test(u)) {
        throw new WeftError(
          'WEFT_E_BAD_REQUEST',
          `--upstream must be SERVICE[.NAMESPACE]:PORT=LOCAL_PORT, got "${u}"`,
        );
      }
    }
    const name =
      opts.name ?? dnsName(`${opts.service}-${hostname()}-${opts.appPort ?? 'client'}-${process.pid}`);
    const abort = new AbortController();
    const info = await fetchInfo(opts.controlPlane, log, abort.signal);
    const xdsAddress = opts.xdsAddr ?? info.xdsAddress;
    // The identity first: without an SVID the sidecar can neither register nor take mTLS traffic.
    const identity = new IdentityClient({
      info,
      namespace: opts.namespace,
      serviceAccount: opts.serviceAccount,
      token: opts.token,
      trustBundle: opts.trustBundle,
      logger: log,
      // Only addresses are taken from a later answer, never trust.
      refreshInfo: async () => (await getJson(`${opts.controlPlane}/api/v1/info`, 3000)) as JoinInfo,
    });
    await identity.start();

    const metadata: Record<string, string> = {
      WEFT_PROXY_TYPE: 'sidecar',
      NAMESPACE: opts.namespace,
      SERVICE_ACCOUNT: opts.serviceAccount,
      WORKLOAD_NAME: name,
      SERVICE: opts.service,
      OUTBOUND_ADDR: formatAddr(outbound),
      TCP_UPSTREAMS: opts.upstreams.join(','),
    };
    if (opts.appPort !== undefined) {
      metadata.INBOUND_ADDR = formatAddr(inbound);
      metadata.APP_PORT = String(opts.appPort);
      metadata.APP_PROTOCOL = opts.protocol;
    }
    // Reconnect within seconds of a control plane restart: the data plane keeps serving
    // meanwhile, but changes made after the restart should reach it promptly.
    const agent = new XdsAgent({
      address: xdsAddress,
      node: { id: name, cluster: opts.service, metadata },
      backoff: { baseMs: 250, maxMs: 4000 },
      // Over TLS with our SVID; a renewed one is used from the next reconnection on.
      tls: () => identity.xdsTls(),
      logger: log,
    });
    const proxy = new Proxy({ logger: log });
    // The SDS secrets `default` and `ROOTCA` are these local credentials; renewals and pushed
    // bundles replace them for new connections while open ones carry on.
    proxy.setIdentity(identity.current());
    identity.on('rotated', (svid: Svid) => proxy.setIdentity(svid));
    // The trust bundle the control plane pushes (SDS `ROOTCA` over the authenticated stream)
    // reaches the proxy's peers and the calls to the control plane without waiting for a renewal.
    agent.on('trustBundle', (pem) => identity.applyPushedBundle(pem));
    agent.on('disconnected', () => identity.pushedBundleStale());

    // The first config must bind every listener, or start-up fails with the reason (a port in
    // use, say); later configs that fail to bind are logged and the proxy keeps what it has.
    let first: ((e?: Error) => void) | undefined;
    const firstApplied = new Promise<void>((resolve, reject) => {
      first = (e) => (e ? reject(e) : resolve());
    });
    agent.on('config', (rc) => {
      proxy.apply(rc).then(
        () => {
          // Early configs can be partial (listeners wait for their routes): start-up is done
          // when the agent has a complete config and it is in force.
          if (!agent.ready) return;
          first?.();
          first = undefined;
        },
        (e: Error) => {
          log.error({ err: e.message }, 'could not apply config');
          first?.(e);
          first = undefined;
        },
      );
    });
    agent.start();

    let sidecar: Sidecar | undefined;
    const admin = new AdminServer({
      agent,
      appHealthy: () => (opts.appPort === undefined ? true : portAnswers(opts.appPort)),
      clusterStats: () => proxy.stats(),
      rbacStats: () => proxy.rbac(),
      certs: () => certificateSummary(identity.current()),
      drain: () => sidecar?.shutdown(),
      draining: () => sidecar?.isDraining ?? false,
      logger: log,
    });
    try {
      const bound = await admin.listen(adminAddr.host, adminAddr.port);
      await firstApplied;
      sidecar = new Sidecar({ ...opts, name }, agent, proxy, admin, bound, identity);
      return sidecar;
    } catch (e) {
      identity.close();
      agent.close();
      await proxy.close();
      await admin.close();
      throw e;
    }
  }

  /** A graceful shutdown has begun. */
  get isDraining(): boolean {
    return this.stopping !== undefined;
  }

  get name(): string {
    return this.opts.name!;
  }

  /** Where the listeners actually are (ports chosen when 0 was asked for). */
  addresses(): { outbound: HostPort; inbound?: HostPort; admin: HostPort } {
    const listening = this.proxy.listening();
    const outbound = listening.find((l) => l.name === 'outbound');
    const inbound = listening.find((l) => l.name.startsWith('inbound|'));
    if (!outbound) throw new WeftError('WEFT_E_INTERNAL', 'the outbound listener is not open');
    return {
      outbound: { host: outbound.host, port: outbound.port },
      ...(inbound ? { inbound: { host: inbound.host, port: inbound.port } } : {}),
      admin: this.adminAddress,
    };
  }

  /** Waits until the app answers on its port (polling: there is no event to wait on). */
  async waitForApp(timeoutMs = 60_000): Promise<void> {
    if (this.opts.appPort === undefined) return;
    const deadline = Date.now() + timeoutMs;
    while (!(await portAnswers(this.opts.appPort))) {
      if (this.abort.signal.aborted)
        throw new WeftError('WEFT_E_UNAVAILABLE', 'stopped while waiting for the app');
      if (Date.now() > deadline) {
        throw new WeftError(
          'WEFT_E_UNAVAILABLE',
          `the app is not listening on 127.0.0.1:${this.opts.appPort} after ${timeoutMs} ms; check --app-port`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Registers the Workload (inbound address, bound to a lease); rejects if the sidecar is told
   * to stop first. No-op without an app port.
   */
  async register(): Promise<void> {
    const { inbound } = this.addresses();
    if (!inbound || this.opts.appPort === undefined) return;
    const advertise =
      this.opts.advertiseAddr ??
      (inbound.host === '0.0.0.0' || inbound.host === '::' ? '127.0.0.1' : inbound.host);
    const workload = {
      apiVersion: 'weft.dev/v1alpha1',
      kind: 'Workload',
      metadata: {
        name: this.name,
        namespace: this.opts.namespace,
        labels: { ...this.opts.labels, app: this.opts.service },
        annotations: { 'weft.dev/sidecar': 'true' },
      },
      spec: {
        address: advertise,
        ports: [{ name: this.opts.protocol.toLowerCase(), port: inbound.port, protocol: this.opts.protocol }],
        serviceAccount: this.opts.serviceAccount,
      },
    };
    this.registration = new Registration({
      call: (method, path, body) => this.identity.call(method, path, body),
      workload,
      ttlSeconds: this.opts.leaseTtlSeconds,
      logger: this.opts.logger,
    });
    await this.registration.start(this.abort.signal);
  }

  /**
   * Graceful stop, bounded by the drain timeout: deregister, keep serving while other proxies
   * learn of it, drain inbound, close everything. Idempotent.
   */
  shutdown(): Promise<void> {
    this.stopping ??= (async () => {
      this.abort.abort();
      const deadline = Date.now() + this.opts.drainTimeoutMs;
      const left = (): number => Math.max(0, deadline - Date.now());
      await withTimeout(this.registration?.stop() ?? Promise.resolve(), left());
      // Other proxies drop this endpoint within milliseconds of the EDS push; a request they
      // had already picked us for must still be served, so inbound stays open for a moment.
      // Never registered (no app port, or stopped before it was ready), nobody picked us. Read
      // after stop(): a registration on its way when the stop came may have landed meanwhile.
      if ((this.registration?.leaseId ?? 0) !== 0)
        await new Promise((r) => setTimeout(r, Math.min(1000, left() / 2)));
      await withTimeout(this.proxy.drain(), left());
    })();
    return this.stopping;
  }

  /**
   * Lets the app's in-flight outbound calls finish (no new ones), bounded by `ms`: for a
   * standalone sidecar, whose app may still be running when it is told to stop.
   */
  async drainOutbound(ms: number): Promise<void> {
    await withTimeout(this.proxy.drainOutbound(), ms);
  }

  /** Closes everything now (after shutdown() for a graceful stop). */
  async close(): Promise<void> {
    this.abort.abort();
    await this.registration?.stop();
    this.identity.close();
    this.agent.close();
    await this.proxy.close();
    await this.admin.close();
  }
}

function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    p.then(
      () => {
        clearTimeout(t);
        resolve();
      },
      () => {
        clearTimeout(t);
        resolve();
      },
    );
  });
}

/**
 * What GET /certs shows of an SVID: who it names, who issued it and when it is valid, and the
 * roots trusted (SHA-256 fingerprints as openssl prints them); never the key.
 */
export function certificateSummary(svid: Svid): object {
  const leaf = new X509Certificate(svid.chainPem);
  const roots = svid.trustBundlePem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  return {
    certificates: [
      {
        spiffeId: svid.spiffeId,
        serialNumber: leaf.serialNumber,
        issuer: leaf.issuer,
        validFrom: new Date(leaf.validFrom).toISOString(),
        notAfter: svid.notAfter.toISOString(),
        renewAt: svid.renewAt.toISOString(),
      },
    ],
    trustBundle: roots.map((pem) => {
      const root = new X509Certificate(pem);
      return {
        subject: root.subject,
        fingerprint256: root.fingerprint256,
        notAfter: new Date(root.validTo).toISOString(),
      };
    }),
  };
}
