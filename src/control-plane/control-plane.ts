// Assembles the control plane: store → mesh state (watch) → xDS config source → ADS server, and
// the REST API on top of the same store. Start-up order matters: the store opens first (a
// corrupt store must stop us before anything listens), then the state is loaded, then xDS and
// the API listen; /healthz answers 200 only once both listen.

import type { AddressInfo } from 'node:net';
import { FileStore } from '../store/file-store.js';
import type { Store } from '../store/store.js';
import { AdsServer } from '../xds/ads-server.js';
import { WeftError } from '../errors.js';
import type { Logger } from '../log.js';
import { MeshState } from './mesh-state.js';
import { MeshXdsSource } from './xds-source.js';
import { ResourceService, resourceStoreKey } from './resource-service.js';
import { ApiServer } from './api-server.js';
import { AdminToken } from './admin-token.js';
import { ControlPlaneIdentity, type ServingCredentials } from './identity.js';
import { XdsServerCredentials, xdsAuthorizer } from './xds-auth.js';
import { bundlePropagation } from './ca-api.js';

export interface ControlPlaneOptions {
  dataDir: string;
  apiAddr: string;
  /** The xDS port: TLS, every stream authenticated (SVID or join token). */
  xdsAddr: string;
  /**
   * A second xDS port without TLS or authentication, for proxyless gRPC clients whose xDS
   * bootstrap offers only insecure channel credentials. Off unless given; keep it on loopback.
   */
  xdsPlaintextAddr?: string;
  trustDomain: string;
  logger: Logger;
  /** Use this store instead of opening the file store in dataDir (tests, etcd later). */
  store?: Store;
  /** The workload API (TLS, SVID client certificates); default: the API's host, port 0. */
  workloadApiAddr?: string;
  /**
   * SPIFFE IDs whose client certificates (on the TLS API) are admin credentials; default
   * `spiffe://<td>/ns/weft-system/sa/weft-admin`.
   */
  adminIdentities?: string[];
  /** Let GETs of resources, proxies and watches answer without the admin token. */
  openReads?: boolean;
  /** Lifetime of issued SVIDs (ms); default 24 h. */
  svidTtlMs?: number;
  /** Bring your own CA: PEM files of the signing certificate (root or intermediate) and its key. */
  caFiles?: { cert: string; key: string; bundle?: string };
}

export interface RunningControlPlane {
  apiUrl: string;
  /** `https://…` — the workload API. */
  workloadApiUrl: string;
  xdsAddress: string;
  /** The unauthenticated xDS port, when one was asked for. */
  xdsPlaintextAddress: string | undefined;
  /** Where the admin token was written (with a data dir). */
  adminTokenPath: string | undefined;
  /** The admin token itself, only when there was no data dir to write it to. */
  adminToken: string | undefined;
  identity: ControlPlaneIdentity;
  store: Store;
  state: MeshState;
  ads: AdsServer;
  close(): Promise<void>;
}

/** Splits `host:port` (IPv6 as `[::1]:port`), with a message naming the flag when malformed. */
export function parseHostPort(text: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new WeftError(
      'WEFT_E_BAD_REQUEST',
      `${flag} must be HOST:PORT (port 0–65535, 0 picks a free port), e.g. 127.0.0.1:15080; got "${text}"`,
    );
  }
  return { host: (m[1] ?? m[2])!, port };
}

/** The admin identity when none is configured: service account weft-admin of weft-system. */
export function defaultAdminIdentity(trustDomain: string): string {
  return `spiffe://${trustDomain}/ns/weft-system/sa/weft-admin`;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<RunningControlPlane> {
  const api = parseHostPort(opts.apiAddr, '--api-addr');
  const xds = parseHostPort(opts.xdsAddr, '--xds-addr');
  const workloadApi = parseHostPort(
    opts.workloadApiAddr ?? `${formatHost(api.host)}:0`,
    '--workload-api-addr',
  );
  const log = opts.logger;

  const store = opts.store ?? (await FileStore.open(opts.dataDir, { logger: log }));
  const cleanups: Array<() => Promise<void> | void> = [() => store.close()];
  try {
    const state = await MeshState.load(store, log);
    cleanups.unshift(() => state.close());
    const identity = await ControlPlaneIdentity.open({
      store,
      trustDomain: opts.trustDomain,
      logger: log,
      ...(opts.svidTtlMs === undefined ? {} : { svidTtlMs: opts.svidTtlMs }),
      ...(opts.caFiles === undefined ? {} : { caFiles: opts.caFiles }),
    });
    cleanups.unshift(() => identity.close());
    const admin = await AdminToken.ensure(store, opts.store ? undefined : opts.dataDir, log);
    const source = new MeshXdsSource(state, { trustDomain: opts.trustDomain });
    // SDS `ROOTCA` follows the CA: re-read whenever the control plane's own SVID is reissued,
    // which every step of a root rotation triggers at once (prepared: the new root joins;
    // activated: it moves first; overlap over: the old one leaves).
    const refreshBundle = async (): Promise<void> => source.setTrustBundle(await identity.trustBundlePem());
    await refreshBundle();
    identity.on('rotated', () => {
      refreshBundle().catch((err: unknown) => log.error({ err }, 'cannot read the trust bundle for SDS'));
    });
    const ads = new AdsServer(source, {
      logger: log,
      controlPlaneId: `weft@${opts.trustDomain}`,
    });
    cleanups.unshift(() => ads.close());
    const xdsCredentials = new XdsServerCredentials(identity.serving());
    const onRotated = (c: ServingCredentials): void => xdsCredentials.update(c);
    identity.on('rotated', onRotated);
    cleanups.unshift(() => void identity.off('rotated', onRotated));
    const bound = await ads.bind(`${formatHost(xds.host)}:${xds.port}`, {
      credentials: xdsCredentials,
      authorize: xdsAuthorizer(identity, (namespace, name) => {
        const w = state.get(resourceStoreKey('Workload', namespace, name));
        const sa = (w?.object.spec as { serviceAccount?: unknown } | undefined)?.serviceAccount;
        return typeof sa === 'string' ? sa : undefined;
      }),
    });
    let xdsPlaintextAddress: string | undefined;
    if (opts.xdsPlaintextAddr !== undefined) {
      const plain = parseHostPort(opts.xdsPlaintextAddr, '--xds-plaintext-addr');
      const b = await ads.bind(`${formatHost(plain.host)}:${plain.port}`);
      xdsPlaintextAddress = `${formatHost(b.host)}:${b.port}`;
      if (!isLoopback(b.host)) {
        log.warn(
          { address: xdsPlaintextAddress },
          'the plaintext xDS port answers anyone who can reach it, without authentication: keep it on loopback',
        );
      }
    }
    let listening = false;
    let workloadApiUrl = '';
    const apiServer = new ApiServer({
      store,
      state,
      resources: new ResourceService(store, state),
      proxies: () => ads.listProxies(),
      info: () => ({
        xdsAddress: `${formatHost(bound.host)}:${bound.port}`,
        ...(xdsPlaintextAddress === undefined ? {} : { xdsPlaintextAddress }),
        trustDomain: opts.trustDomain,
        workloadApi: workloadApiUrl,
      }),
      healthy: () => listening,
      log,
      admin: admin.admin,
      identity,
      openReads: opts.openReads ?? false,
      adminIdentities: new Set(opts.adminIdentities ?? [defaultAdminIdentity(opts.trustDomain)]),
      trustBundle: () => bundlePropagation(ads.listProxies(), source.trustBundle()),
    });
    const addr: AddressInfo = await apiServer.listen(api.host, api.port);
    cleanups.unshift(() => apiServer.close());
    const tlsAddr = await apiServer.listenTls(workloadApi.host, workloadApi.port);
    workloadApiUrl = `https://${formatHost(tlsAddr.address)}:${tlsAddr.port}`;
    listening = true;

    let closing: Promise<void> | undefined;
    return {
      apiUrl: `http://${formatHost(addr.address)}:${addr.port}`,
      workloadApiUrl,
      xdsAddress: `${formatHost(bound.host)}:${bound.port}`,
      xdsPlaintextAddress,
      adminTokenPath: admin.path,
      adminToken: admin.created,
      identity,
      store,
      state,
      ads,
      close: () => (closing ??= runCleanups(cleanups)),
    };
  } catch (e) {
    await runCleanups(cleanups);
    throw e;
  }
}

async function runCleanups(cleanups: Array<() => Promise<void> | void>): Promise<void> {
  for (const c of cleanups) {
    try {
      await c();
    } catch {
      // Shutting down: keep closing the rest.
    }
  }
}
