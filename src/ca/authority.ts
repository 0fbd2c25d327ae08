// The certificate authority: signs X.509-SVIDs for workloads from their CSRs, keeps its material
// in the store, serves the trust bundle, and rotates its root with an overlap during which old
// and new roots are both trusted. Every replica of the control plane can open the same store:
// writes are guarded by the state's modRevision, and each signing re-reads the state (one get)
// so a rotation made elsewhere takes effect at once.
import { X509Certificate } from 'node:crypto';
import { WeftError, type FieldError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { int, object } from '../schema/schema.js';
import type { Store, TxnCondition, TxnOp } from '../store/store.js';
import {
  anchorOf,
  BACKDATE_MS,
  generateRoot,
  loadAuthority,
  validateSuppliedCa,
  type AuthorityCerts,
  type LoadedAuthority,
  type NewAuthority,
  type SuppliedCa,
} from './ca-material.js';
import {
  CA_STATE_KEY,
  caKeyRecordKey,
  caKeyRecordSchema,
  caStateSchema,
  decodeRecord,
  type CaState,
} from './ca-records.js';
import { caPinOf } from './ca-pin.js';
import {
  checkCsrIdentity,
  CSR_REFUSAL_REASONS,
  csrRefusalReason,
  parseCsr,
  type CsrRefusalReason,
} from './csr.js';
import { trustDomainSchema, workloadIdentitySchema } from './identity-schema.js';
import { workloadSpiffeId, type WorkloadIdentity } from './spiffe-id.js';
import { buildLeafSvid, renewalTime } from './svid.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
export const DEFAULT_SVID_TTL_MS = DAY;
export const MIN_SVID_TTL_MS = MINUTE;
export const MAX_SVID_TTL_MS = 30 * DAY;
export const DEFAULT_ROOT_TTL_MS = 3650 * DAY;

const configSchema = object({
  trustDomain: trustDomainSchema().describe('SPIFFE trust domain of every identity this CA issues.'),
  svidTtlMs: int({ min: MIN_SVID_TTL_MS, max: MAX_SVID_TTL_MS })
    .default(DEFAULT_SVID_TTL_MS)
    .describe('Lifetime of an SVID, and the longest a request may ask for.'),
  rootTtlMs: int({ min: DAY, max: 36500 * DAY })
    .default(DEFAULT_ROOT_TTL_MS)
    .describe('Lifetime of a generated root.'),
  rotationOverlapMs: int({ min: 0 })
    .optional()
    .describe('Default overlap of a rotation; at least svidTtlMs. Default: 2 × svidTtlMs.'),
}).refine((c, report) => {
  if (c.rotationOverlapMs !== undefined && c.rotationOverlapMs < c.svidTtlMs)
    report('rotationOverlapMs', overlapTooShort(c.svidTtlMs));
});

export interface CertificateAuthorityOptions {
  store: Store;
  trustDomain: string;
  /** Default 24 h; 1 min to 30 days. */
  svidTtlMs?: number;
  /** Lifetime of generated roots; default 10 years. */
  rootTtlMs?: number;
  /** Default overlap of a rotation; default 2 × svidTtlMs, never less than svidTtlMs. */
  rotationOverlapMs?: number;
  /** Bring your own CA. Used on first start; later, see `open`. */
  supplied?: SuppliedCa;
  /** ms since the epoch; tests pass a controllable clock. */
  now?: () => number;
  logger?: Logger;
}

export interface SignRequest {
  /** PKCS#10, PEM text or DER bytes, at most CSR_MAX_BYTES. */
  csr: string | Uint8Array;
  /** Who the caller is, as established by a join token or its current SVID. */
  identity: WorkloadIdentity;
  /** Shorter lifetime than the CA's svidTtlMs, if wanted. */
  ttlMs?: number;
}

export interface IssuedSvid {
  spiffeId: string;
  serialNumber: string;
  /** The SVID alone. */
  certificatePem: string;
  /**
   * The SVID followed by the certificates between it and the root (a supplied intermediate and
   * its own intermediates; nothing for a generated root): what node:tls takes as `cert`.
   */
  chainPem: string;
  /** The roots trusted now: what node:tls takes as `ca`. */
  trustBundlePem: string;
  notBefore: Date;
  notAfter: Date;
  /** Halfway through the lifetime. */
  renewAt: Date;
  /** Which authority signed it. */
  authorityId: string;
}

export interface AuthorityInfo {
  id: string;
  source: 'generated' | 'supplied';
  subject: string;
  notBefore: Date;
  notAfter: Date;
  /** SHA-256 fingerprints of the authority's roots. */
  roots: string[];
}

export interface CaStatus {
  trustDomain: string;
  active: AuthorityInfo;
  /** Present during a rotation's overlap. */
  retiring?: { id: string; roots: string[]; trustedUntil: Date };
}

export interface CaStats {
  issued: number;
  refused: Record<CsrRefusalReason, number>;
}

interface Loaded {
  modRevision: number;
  state: CaState;
  active: LoadedAuthority;
}

export class CertificateAuthority {
  private loaded: Loaded;
  private readonly counters: CaStats = {
    issued: 0,
    refused: Object.fromEntries(CSR_REFUSAL_REASONS.map((r) => [r, 0])) as Record<CsrRefusalReason, number>,
  };

  private constructor(
    private readonly store: Store,
    private readonly config: {
      trustDomain: string;
      svidTtlMs: number;
      rootTtlMs: number;
      rotationOverlapMs: number;
    },
    private readonly now: () => number,
    private readonly log: Logger,
    loaded: Loaded,
  ) {
    this.loaded = loaded;
  }

  /**
   * Opens the CA kept in `store`, creating it on first start: a generated root, or `supplied`.
   * Later starts use what is stored. If `supplied` differs from the stored authority but has the
   * same roots (a renewed intermediate), it replaces it; with other roots, a rotation is needed
   * and WEFT_E_CA_ROTATION says so. Options are validated (WEFT_E_VALIDATION, by field).
   */
  static async open(opts: CertificateAuthorityOptions): Promise<CertificateAuthority> {
    const checked = configSchema.validate({
      trustDomain: opts.trustDomain,
      svidTtlMs: opts.svidTtlMs,
      rootTtlMs: opts.rootTtlMs,
      rotationOverlapMs: opts.rotationOverlapMs,
    });
    if (!checked.ok) throw validationError('invalid CA options', checked.errors);
    const c = checked.value;
    const config = { ...c, rotationOverlapMs: c.rotationOverlapMs ?? 2 * c.svidTtlMs };
    const now = opts.now ?? Date.now;
    const log = opts.logger ?? silentLogger();

    let loaded = await readState(opts.store);
    if (!loaded) {
      const material = opts.supplied
        ? validateSuppliedCa(opts.supplied, config.trustDomain, now())
        : await generateRoot(config.trustDomain, now(), config.rootTtlMs);
      const state: CaState = { version: 1, trustDomain: config.trustDomain, active: material.certs };
      try {
        await writeState(opts.store, state, material, undefined, [{ key: CA_STATE_KEY, modRevision: 0 }]);
        log.info({ authority: material.certs.id, source: material.certs.source }, 'CA created');
      } catch (err) {
        // Another replica created it first: use theirs.
        if (!(err instanceof WeftError && err.code === 'WEFT_E_CONFLICT')) throw err;
      }
      loaded = await readState(opts.store);
      if (!loaded) throw new WeftError('WEFT_E_INTERNAL', 'the CA state vanished right after it was written');
    }
    if (loaded.state.trustDomain !== config.trustDomain)
      throw new WeftError(
        'WEFT_E_CA_MATERIAL',
        `the stored CA serves trust domain "${loaded.state.trustDomain}", but "${config.trustDomain}" is configured; ` +
          'a trust domain cannot change in place (every identity would change): configure the stored one, or use a new store',
        [{ path: 'trustDomain', message: `must be "${loaded.state.trustDomain}" (the stored CA's)` }],
      );
    const ca = new CertificateAuthority(opts.store, config, now, log, loaded);
    if (opts.supplied) await ca.adoptSupplied(opts.supplied);
    return ca;
  }

  get trustDomain(): string {
    return this.config.trustDomain;
  }

  spiffeIdFor(identity: WorkloadIdentity): string {
    return workloadSpiffeId(this.config.trustDomain, identity);
  }

  /**
   * Signs an SVID for `identity` from the workload's CSR. Refusals (counted by reason, see
   * stats()): WEFT_E_CSR_TOO_LARGE, _MALFORMED, _KEY_NOT_ALLOWED, _BAD_SIGNATURE,
   * _WRONG_IDENTITY. A bad identity or ttlMs from the caller is WEFT_E_VALIDATION.
   */
  async sign(req: SignRequest): Promise<IssuedSvid> {
    const identity = workloadIdentitySchema.validate(req.identity);
    if (!identity.ok) throw validationError('invalid identity', identity.errors, 'identity');
    const ttlMs = req.ttlMs ?? this.config.svidTtlMs;
    if (!Number.isSafeInteger(ttlMs) || ttlMs < MIN_SVID_TTL_MS || ttlMs > this.config.svidTtlMs)
      throw validationError('invalid ttlMs', [
        {
          path: 'ttlMs',
          message: `must be an integer from ${MIN_SVID_TTL_MS} to ${this.config.svidTtlMs} (ms)`,
        },
      ]);
    const spiffeId = this.spiffeIdFor(identity.value);

    let csr;
    try {
      csr = await parseCsr(req.csr);
      checkCsrIdentity(csr, spiffeId);
    } catch (err) {
      const reason = csrRefusalReason(err);
      if (reason) this.counters.refused[reason]++;
      throw err;
    }

    const { state, active } = await this.current();
    const now = this.now();
    const notBefore = new Date(Math.max(now - BACKDATE_MS, active.signer.certificate.notBefore.getTime()));
    const notAfter = new Date(Math.min(now + ttlMs, active.chainNotAfter.getTime()));
    if (notAfter.getTime() <= now)
      throw new WeftError(
        'WEFT_E_CA_MATERIAL',
        `the signing certificate (or an intermediate) of CA ${active.certs.id} expired at ` +
          `${active.chainNotAfter.toISOString()}; supply renewed material or start a rotation`,
      );
    const leaf = await buildLeafSvid({
      signer: active.signer,
      publicKey: csr.publicKey,
      spiffeId,
      notBefore,
      notAfter,
    });
    this.counters.issued++;
    const certificatePem = leaf.toString('pem') + '\n';
    return {
      spiffeId,
      serialNumber: leaf.serialNumber,
      certificatePem,
      chainPem: certificatePem + active.chainPem.join(''),
      trustBundlePem: bundleOf(state, now).join(''),
      notBefore: leaf.notBefore,
      notAfter: leaf.notAfter,
      renewAt: renewalTime(leaf),
      authorityId: active.certs.id,
    };
  }

  /** The roots trusted now (PEM each): the active authority's, plus the retiring one's until its overlap ends. */
  async trustBundle(): Promise<string[]> {
    return bundleOf((await this.current()).state, this.now());
  }

  /**
   * The CA pin join tokens carry (ca-pin.ts): of the root that anchors the chain the CA signs
   * with now, so a workload holding the token can tell the control plane's certificates from
   * anyone else's. From the start of a rotation that is the new root.
   */
  async caPin(): Promise<string> {
    return caPinOf(anchorOf((await this.current()).state.active as AuthorityCerts));
  }

  async status(): Promise<CaStatus> {
    const { state, active } = await this.current();
    const cert = active.signer.certificate;
    const out: CaStatus = {
      trustDomain: state.trustDomain,
      active: {
        id: state.active.id,
        source: state.active.source,
        subject: cert.subject,
        notBefore: cert.notBefore,
        notAfter: cert.notAfter,
        roots: state.active.trustAnchorsPem.map(fingerprint),
      },
    };
    if (state.retiring && this.now() < state.retiring.trustedUntil)
      out.retiring = {
        id: state.retiring.id,
        roots: state.retiring.trustAnchorsPem.map(fingerprint),
        trustedUntil: new Date(state.retiring.trustedUntil),
      };
    return out;
  }

  stats(): CaStats {
    return { issued: this.counters.issued, refused: { ...this.counters.refused } };
  }

  /**
   * Starts a root rotation: new SVIDs are signed by a new authority (generated, or `supplied`)
   * from now on, and the old roots stay in the trust bundle for `overlapMs` (default from the
   * options; at least svidTtlMs, so every SVID the old root signed expires first). The old key is
   * removed from the store at once. WEFT_E_CA_ROTATION if a rotation is still in its overlap.
   */
  async startRotation(opts: { overlapMs?: number; supplied?: SuppliedCa } = {}): Promise<CaStatus> {
    const overlapMs = opts.overlapMs ?? this.config.rotationOverlapMs;
    if (!Number.isSafeInteger(overlapMs) || overlapMs < this.config.svidTtlMs)
      throw validationError('invalid overlapMs', [
        { path: 'overlapMs', message: overlapTooShort(this.config.svidTtlMs) },
      ]);
    const { state, modRevision } = await this.current();
    const now = this.now();
    if (state.retiring && now < state.retiring.trustedUntil)
      throw new WeftError(
        'WEFT_E_CA_ROTATION',
        `a rotation is in its overlap until ${new Date(state.retiring.trustedUntil).toISOString()} ` +
          `(CA ${state.retiring.id} still trusted); wait for it, or end it now with finishRotation()`,
      );
    const material = opts.supplied
      ? validateSuppliedCa(opts.supplied, this.config.trustDomain, now)
      : await generateRoot(this.config.trustDomain, now, this.config.rootTtlMs);
    if (material.certs.id === state.active.id)
      throw new WeftError(
        'WEFT_E_CA_ROTATION',
        `the supplied CA is already the active one (${state.active.id})`,
      );
    const next: CaState = {
      version: 1,
      trustDomain: state.trustDomain,
      active: material.certs,
      retiring: {
        id: state.active.id,
        trustAnchorsPem: state.active.trustAnchorsPem,
        trustedUntil: now + overlapMs,
      },
    };
    await this.write(next, material, state.active.id, modRevision, 'start the rotation');
    this.log.info(
      { from: state.active.id, to: material.certs.id, trustedUntil: new Date(now + overlapMs).toISOString() },
      'CA rotation started',
    );
    return this.status();
  }

  /** Ends a rotation's overlap now: the old roots leave the bundle. Returns whether there was one. */
  async finishRotation(): Promise<boolean> {
    const { state, modRevision } = await this.current();
    if (!state.retiring) return false;
    const { retiring: _dropped, ...rest } = state;
    await this.write(rest, undefined, undefined, modRevision, 'finish the rotation');
    this.log.info({ dropped: state.retiring.id }, 'CA rotation finished; old roots left the trust bundle');
    return true;
  }

  /**
   * Housekeeping for the control plane to call now and then: once an overlap has ended, removes
   * the retiring roots from the stored state (the bundle already leaves them out by time).
   * Returns whether it changed anything; another replica doing it first is not an error.
   */
  async maintain(): Promise<boolean> {
    const { state } = await this.current();
    if (!state.retiring || this.now() < state.retiring.trustedUntil) return false;
    try {
      return await this.finishRotation();
    } catch (err) {
      if (err instanceof WeftError && err.code === 'WEFT_E_CA_ROTATION') return false;
      throw err;
    }
  }

  // ---- internals

  /** The stored state, re-read on each call (one get) and re-loaded only when it changed. */
  private async current(): Promise<Loaded> {
    const kv = await this.store.get(CA_STATE_KEY);
    if (kv && kv.modRevision === this.loaded.modRevision) return this.loaded;
    const fresh = await readState(this.store);
    if (!fresh)
      throw new WeftError(
        'WEFT_E_CA_MATERIAL',
        `${CA_STATE_KEY} was deleted from the store; restore it from a backup`,
      );
    this.loaded = fresh;
    return fresh;
  }

  private async write(
    next: CaState,
    material: NewAuthority | undefined,
    dropKeyOf: string | undefined,
    modRevision: number,
    what: string,
  ): Promise<void> {
    try {
      await writeState(this.store, next, material, dropKeyOf, [{ key: CA_STATE_KEY, modRevision }]);
    } catch (err) {
      if (err instanceof WeftError && err.code === 'WEFT_E_CONFLICT')
        throw new WeftError(
          'WEFT_E_CA_ROTATION',
          `could not ${what}: the CA state changed meanwhile (another replica?); check status() and retry`,
        );
      throw err;
    }
    await this.current();
  }

  /** See open(): a supplied CA that is not the stored one. */
  private async adoptSupplied(supplied: SuppliedCa): Promise<void> {
    const { state, modRevision } = this.loaded;
    const material = validateSuppliedCa(supplied, this.config.trustDomain, this.now());
    if (material.certs.id === state.active.id) return;
    if (
      !sameSet(material.certs.trustAnchorsPem.map(fingerprint), state.active.trustAnchorsPem.map(fingerprint))
    )
      throw new WeftError(
        'WEFT_E_CA_ROTATION',
        `the supplied CA has other roots than the stored CA ${state.active.id}; switching directly would ` +
          'break every running workload: start a rotation with it (startRotation({ supplied })) instead; ' +
          'or, if the stored CA is the newer one (a rotation already happened), update or drop the supplied material',
      );
    const next: CaState = { ...state, active: material.certs };
    await this.write(next, material, state.active.id, modRevision, 'adopt the supplied CA');
    this.log.info(
      { from: state.active.id, to: material.certs.id },
      'CA signing certificate replaced (same roots)',
    );
  }
}

async function readState(store: Store): Promise<Loaded | undefined> {
  // The state and its key are two reads; a rotation between them deletes the key just read
  // for. Then the state has moved on, and reading again gives a matching pair.
  for (let attempt = 0; ; attempt++) {
    const kv = await store.get(CA_STATE_KEY);
    if (!kv) return undefined;
    const state = decodeRecord(caStateSchema, CA_STATE_KEY, kv.value);
    const keyKey = caKeyRecordKey(state.active.id);
    const keyKv = await store.get(keyKey);
    if (!keyKv) {
      const now = await store.get(CA_STATE_KEY);
      if (now && now.modRevision !== kv.modRevision && attempt < 10) continue;
      throw new WeftError(
        'WEFT_E_STORE_CORRUPT',
        `${keyKey} (the active CA's key) is missing; restore it from a backup`,
      );
    }
    const record = decodeRecord(caKeyRecordSchema, keyKey, keyKv.value);
    return {
      modRevision: kv.modRevision,
      state,
      active: await loadAuthority(state.active as AuthorityCerts, record.privateKeyPem),
    };
  }
}

async function writeState(
  store: Store,
  state: CaState,
  material: NewAuthority | undefined,
  dropKeyOf: string | undefined,
  conditions: TxnCondition[],
): Promise<void> {
  const ops: TxnOp[] = [{ type: 'put', key: CA_STATE_KEY, value: JSON.stringify(state) }];
  if (material)
    ops.push({
      type: 'put',
      key: caKeyRecordKey(material.certs.id),
      value: JSON.stringify({ id: material.certs.id, privateKeyPem: material.privateKeyPem }),
    });
  if (dropKeyOf && dropKeyOf !== material?.certs.id)
    ops.push({ type: 'delete', key: caKeyRecordKey(dropKeyOf) });
  await store.txn(ops, conditions);
}

function bundleOf(state: CaState, now: number): string[] {
  const roots = [...state.active.trustAnchorsPem];
  if (state.retiring && now < state.retiring.trustedUntil) roots.push(...state.retiring.trustAnchorsPem);
  const seen = new Set<string>();
  return roots.filter((pem) => {
    const fp = fingerprint(pem);
    if (seen.has(fp)) return false;
    seen.add(fp);
    return true;
  });
}

/** SHA-256 fingerprint, colon-separated hex as openssl prints it. */
function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

function overlapTooShort(svidTtlMs: number): string {
  return (
    `must be at least svidTtlMs (${svidTtlMs} ms): SVIDs signed by the old root live that long, ` +
    'and would stop verifying if their root left the bundle first (use finishRotation() to end an overlap early on purpose)'
  );
}

function validationError(what: string, errors: FieldError[], prefix?: string): WeftError {
  const withPrefix = prefix
    ? errors.map((e) => ({ ...e, path: e.path ? `${prefix}.${e.path}` : prefix }))
    : errors;
  return new WeftError(
    'WEFT_E_VALIDATION',
    `${what}: ${withPrefix.map((e) => `${e.path}: ${e.message}`).join('; ')}`,
    withPrefix,
  );
}
