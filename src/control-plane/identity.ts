// The control plane's side of workload identity: the certificate authority and the join tokens
// (src/ca), and the control plane's own SVID, which its TLS listeners serve (the workload API and
// xDS). The control plane is a workload like any other here: its key is made in this process and
// never stored; its SVID is renewed at half its lifetime, whenever the CA state changes (a root
// rotation is prepared or finished) and when a rotation's phase ends by the clock (the prepared
// root starts signing; the overlap ends), and listeners are told through 'rotated' to load the
// new one. So the listeners trust a prepared root before any workload can present a certificate
// of it, and the control plane's own certificate moves to the new root at its activation, when
// every workload already trusts it.

import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import {
  CA_STATE_KEY,
  CertificateAuthority,
  CONTROL_PLANE_IDENTITY,
  createCsr,
  generateWorkloadKey,
  JoinTokens,
  type CreatedToken,
  type CreateTokenRequest,
  type IssuedSvid,
  type SuppliedCa,
  type WorkloadIdentity,
} from '../ca/index.js';
import { WeftError } from '../errors.js';
import type { Logger } from '../log.js';
import { systemClock } from '../store/clock.js';
import type { Store, Watcher } from '../store/store.js';

export { CONTROL_PLANE_IDENTITY };

export interface ServingCredentials {
  spiffeId: string;
  /** PKCS#8 PEM; only ever in this process. */
  privateKeyPem: string;
  /** The SVID and its intermediates. */
  chainPem: string;
  /** Every root trusted now. */
  trustBundlePem: string;
  notAfter: Date;
}

/** node:tls options serving these credentials: TLS 1.3 only, peers checked against the bundle. */
export function servingTlsOptions(c: ServingCredentials): {
  key: string;
  cert: string;
  ca: string;
  minVersion: 'TLSv1.3';
} {
  return { key: c.privateKeyPem, cert: c.chainPem, ca: c.trustBundlePem, minVersion: 'TLSv1.3' };
}

export interface IdentityOptions {
  store: Store;
  trustDomain: string;
  /** Lifetime of the SVIDs issued (and of the control plane's own). */
  svidTtlMs?: number;
  /** --ca-cert / --ca-key (and optional bundle): bring your own root or intermediate. */
  caFiles?: { cert: string; key: string; bundle?: string };
  logger: Logger;
}

/** Reads the bring-your-own CA files, naming the flag of any that cannot be read. */
export function readCaFiles(files: { cert: string; key: string; bundle?: string }): SuppliedCa {
  const read = (path: string, flag: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      throw new WeftError('WEFT_E_CA_MATERIAL', `${flag} ${path}: ${(e as Error).message}`);
    }
  };
  const supplied: SuppliedCa = {
    certificatePem: read(files.cert, '--ca-cert'),
    privateKeyPem: read(files.key, '--ca-key'),
  };
  if (files.bundle !== undefined) supplied.trustAnchorsPem = read(files.bundle, '--ca-bundle');
  return supplied;
}

export class ControlPlaneIdentity extends EventEmitter<{ rotated: [ServingCredentials] }> {
  private current: ServingCredentials | undefined;
  /** Cancels the pending renewal. */
  private cancelRenewal: () => void = () => undefined;
  /** Fires when the CA's rotation phase next changes by the clock. */
  private phaseTimer: NodeJS.Timeout | undefined;
  private watcher: Watcher | undefined;
  private closed = false;
  private renewing: Promise<void> | undefined;

  private constructor(
    readonly ca: CertificateAuthority,
    readonly tokens: JoinTokens,
    private readonly log: Logger,
  ) {
    super();
  }

  static async open(opts: IdentityOptions): Promise<ControlPlaneIdentity> {
    const ca = await CertificateAuthority.open({
      store: opts.store,
      trustDomain: opts.trustDomain,
      logger: opts.logger,
      ...(opts.svidTtlMs === undefined ? {} : { svidTtlMs: opts.svidTtlMs }),
      ...(opts.caFiles === undefined ? {} : { supplied: readCaFiles(opts.caFiles) }),
    });
    const id = new ControlPlaneIdentity(ca, new JoinTokens(opts.store), opts.logger);
    // Phase changes that came due while no control plane ran are recorded first.
    await ca.maintain();
    await id.renew();
    // A rotation changes the bundle every peer must be offered, and who signs: reissue at once.
    let last = (await opts.store.get(CA_STATE_KEY))?.modRevision ?? 0;
    id.watcher = opts.store.watch(CA_STATE_KEY, (events) => {
      const rev =
        events.at(-1)?.type === 'put' ? (events.at(-1) as { kv: { modRevision: number } }).kv.modRevision : 0;
      if (rev === last) return;
      last = rev;
      void id.renewSoon();
    });
    return id;
  }

  get spiffeId(): string {
    return this.ca.spiffeIdFor(CONTROL_PLANE_IDENTITY);
  }

  /** The credentials the control plane's TLS listeners serve now. */
  serving(): ServingCredentials {
    if (!this.current) throw new WeftError('WEFT_E_INTERNAL', 'the control plane has no SVID yet');
    return this.current;
  }

  async trustBundlePem(): Promise<string> {
    return (await this.ca.trustBundle()).join('');
  }

  /** A join token pinned to the root the CA signs under now (see ca-pin.ts). */
  async createJoinToken(req: CreateTokenRequest): Promise<CreatedToken> {
    return this.tokens.create(req, { caPin: await this.ca.caPin() });
  }

  /** Signs a workload's CSR for the identity it proved (a join token or its current SVID). */
  issue(csr: string, identity: WorkloadIdentity): Promise<IssuedSvid> {
    return this.ca.sign({ csr, identity });
  }

  close(): void {
    this.closed = true;
    this.cancelRenewal();
    clearTimeout(this.phaseTimer);
    this.watcher?.cancel();
  }

  private renewSoon(): Promise<void> {
    return (this.renewing ??= this.renew()
      .catch((e: unknown) => {
        this.log.error(
          { err: (e as Error).message },
          'could not renew the control plane SVID; retrying in 10 s',
        );
        this.schedule(10_000);
      })
      .finally(() => (this.renewing = undefined)));
  }

  private async renew(): Promise<void> {
    const key = await generateWorkloadKey();
    const svid = await this.ca.sign({
      csr: await createCsr(key, this.spiffeId),
      identity: CONTROL_PLANE_IDENTITY,
    });
    if (this.closed) return;
    this.current = {
      spiffeId: svid.spiffeId,
      privateKeyPem: key.privateKeyPem,
      chainPem: svid.chainPem,
      trustBundlePem: svid.trustBundlePem,
      notAfter: svid.notAfter,
    };
    this.schedule(svid.renewAt.getTime() - Date.now());
    this.emit('rotated', this.current);
    await this.schedulePhase();
  }

  /**
   * At the CA's next phase change (a prepared root activates; an overlap ends): records it in
   * the store (each replica tries; the first wins) and renews, so that the certificate served
   * and the bundle trusted and pushed follow at once.
   */
  private async schedulePhase(): Promise<void> {
    let next: number | undefined;
    try {
      next = (await this.ca.status()).nextChangeAt?.getTime();
    } catch (e) {
      // The next renewal (or CA state change) schedules it again.
      this.log.warn({ err: (e as Error).message }, 'could not read the CA rotation phase');
      return;
    }
    clearTimeout(this.phaseTimer);
    if (next === undefined || this.closed) return;
    const wait = (): void => {
      const ms = next - Date.now();
      if (ms >= 0) {
        // In steps (setTimeout holds at most ~24.8 days); +1: the phase changes *at* `next`.
        this.phaseTimer = setTimeout(wait, Math.min(ms + 1, 2 ** 31 - 1));
        this.phaseTimer.unref();
        return;
      }
      this.ca
        .maintain()
        .catch((e: unknown) =>
          this.log.warn(
            { err: (e as Error).message },
            'could not record the CA rotation phase; renewing anyway',
          ),
        )
        .finally(() => void this.renewSoon());
    };
    wait();
  }

  private schedule(ms: number): void {
    this.cancelRenewal();
    if (this.closed) return;
    this.cancelRenewal = systemClock.setTimer(() => void this.renewSoon(), Math.max(0, ms));
  }
}
