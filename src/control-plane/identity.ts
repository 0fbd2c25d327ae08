// The control plane's side of workload identity: the certificate authority and the join tokens
// (src/ca), and the control plane's own SVID, which its TLS listeners serve (the workload API and
// xDS). The control plane is a workload like any other here: its key is made in this process and
// never stored; its SVID is renewed at half its lifetime and whenever the CA's trust bundle
// changes (a root rotation), and listeners are told through 'rotated' to load the new one.

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
  private renewTimer: NodeJS.Timeout | undefined;
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
    clearTimeout(this.renewTimer);
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
  }

  private schedule(ms: number): void {
    clearTimeout(this.renewTimer);
    if (this.closed) return;
    // setTimeout holds at most ~24.8 days; a longer wait is taken in steps.
    const step = Math.max(0, Math.min(ms, 2 ** 31 - 1));
    this.renewTimer = setTimeout(() => {
      if (step < ms) this.schedule(ms - step);
      else void this.renewSoon();
    }, step);
    this.renewTimer.unref();
  }
}
