// The certificate authority: signs X.509-SVIDs for workloads from their CSRs, keeps its material
// in the store, serves the trust bundle, and rotates its root trust first, signing second: a new
// authority is first only trusted (prepared: in the bundle, while the old one still signs), then
// signs (the old roots stay trusted for an overlap), then the old roots leave the bundle. Every
// replica of the control plane can open the same store: writes are guarded by the state's
// modRevision, and each signing re-reads the state (one get) so a rotation made elsewhere takes
// effect at once. The steps a rotation takes by the clock (activation, end of the overlap) are
// read from the stored times, so every replica takes them at the same moment without a write;
// maintain() then records them.
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
/** The longest a rotation may be prepared for. */
export const MAX_PREPARE_MS = 365 * DAY;

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
  rotationPrepareMs: int({ min: 0, max: MAX_PREPARE_MS })
    .optional()
    .describe('Default preparation of a rotation. Default: svidTtlMs / 2.'),
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
  /**
   * Default preparation of a rotation; default svidTtlMs / 2: the time in which every running
   * workload renews its SVID once, and so receives the new root with it even if nothing pushes it.
   */
  rotationPrepareMs?: number;
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

/**
 * Where a rotation stands: `stable` (one authority), `prepared` (the next authority's roots are
 * trusted, the active one still signs), `overlap` (the new authority signs, the old roots are
 * still trusted).
 */
export type RotationPhase = 'stable' | 'prepared' | 'overlap';

export interface CaStatus {
  trustDomain: string;
  phase: RotationPhase;
  /** The authority that signs now. */
  active: AuthorityInfo;
  /** Present while a rotation is prepared: trusted, and signing from `activateAt`. */
  prepared?: AuthorityInfo & {
    activateAt: Date;
    /** When the active authority's roots will leave the bundle (activateAt + the overlap). */
    retiringTrustedUntil: Date;
  };
  /** Present during a rotation's overlap. */
  retiring?: {
    id: string;
    roots: string[];
    trustedUntil: Date;
    /** When it stopped signing; SVIDs it signed live until then + svidTtlMs at most. */
    retiredAt?: Date;
  };
  /** When the phase changes next by the clock (activation, or the end of the overlap). */
  nextChangeAt?: Date;
  svidTtlMs: number;
}

export interface CaStats {
  issued: number;
  refused: Record<CsrRefusalReason, number>;
}

interface Loaded {
  modRevision: number;
  /** As stored. */
  state: CaState;
  active: LoadedAuthority;
  /** The prepared authority, ready to sign from its activateAt. */
  prepared: LoadedAuthority | undefined;
}

/** The CA at one moment: the stored state with the steps due by the clock taken. */
interface View {
  state: CaState;
  signer: LoadedAuthority;
  /** Whether `state` differs from the stored one (maintain() would write it). */
  changed: boolean;
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
      rotationPrepareMs: number;
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
      rotationPrepareMs: opts.rotationPrepareMs,
    });
    if (!checked.ok) throw validationError('invalid CA options', checked.errors);
    const c = checked.value;
    const config = {
      ...c,
      rotationOverlapMs: c.rotationOverlapMs ?? 2 * c.svidTtlMs,
      rotationPrepareMs: c.rotationPrepareMs ?? Math.floor(c.svidTtlMs / 2),
    };
    const now = opts.now ?? Date.now;
    const log = opts.logger ?? silentLogger();

    let loaded = await readState(opts.store);
    if (!loaded) {
      const material = opts.supplied
        ? validateSuppliedCa(opts.supplied, config.trustDomain, now())
        : await generateRoot(config.trustDomain, now(), config.rootTtlMs);
      const state: CaState = { version: 1, trustDomain: config.trustDomain, active: material.certs };
      try {
        await writeState(opts.store, state, material, [], [{ key: CA_STATE_KEY, modRevision: 0 }]);
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

    const now = this.now();
    const { state, signer: active } = await this.view(now);
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
      trustBundlePem: bundleOf(state).join(''),
      notBefore: leaf.notBefore,
      notAfter: leaf.notAfter,
      renewAt: renewalTime(leaf),
      authorityId: active.certs.id,
    };
  }

  /**
   * The roots trusted now (PEM each): the active authority's, with the one its signing chain
   * leads to first; then a prepared authority's; then the retiring one's until its overlap ends.
   */
  async trustBundle(): Promise<string[]> {
    return bundleOf((await this.view(this.now())).state);
  }

  /**
   * The CA pin join tokens carry (ca-pin.ts): of the root that anchors the chain the CA signs
   * with now, so a workload holding the token can tell the control plane's certificates from
   * anyone else's. From a rotation's activation on, that is the new root (while it is only
   * prepared, the control plane's own certificate still chains to the old one).
   */
  async caPin(): Promise<string> {
    return caPinOf(anchorOf((await this.view(this.now())).signer.certs));
  }

  async status(): Promise<CaStatus> {
    const loaded = await this.current();
    const { state, signer } = viewAt(loaded, this.now());
    const out: CaStatus = {
      trustDomain: state.trustDomain,
      phase: state.prepared ? 'prepared' : state.retiring ? 'overlap' : 'stable',
      active: authorityInfo(signer),
      svidTtlMs: this.config.svidTtlMs,
    };
    if (state.prepared && loaded.prepared) {
      out.prepared = {
        ...authorityInfo(loaded.prepared),
        activateAt: new Date(state.prepared.activateAt),
        retiringTrustedUntil: new Date(state.prepared.activateAt + state.prepared.overlapMs),
      };
      out.nextChangeAt = out.prepared.activateAt;
    }
    if (state.retiring) {
      out.retiring = {
        id: state.retiring.id,
        roots: state.retiring.trustAnchorsPem.map(fingerprint),
        trustedUntil: new Date(state.retiring.trustedUntil),
        ...(state.retiring.retiredAt === undefined ? {} : { retiredAt: new Date(state.retiring.retiredAt) }),
      };
      out.nextChangeAt = out.retiring.trustedUntil;
    }
    return out;
  }

  stats(): CaStats {
    return { issued: this.counters.issued, refused: { ...this.counters.refused } };
  }

  /**
   * Starts a root rotation, trust first: a new authority (generated, or `supplied`) is prepared
   * at once (its roots join the trust bundle; the current authority still signs) and signs every
   * SVID from `prepareMs` later (default from the options: half the SVID lifetime, in which every
   * workload renews once and so receives the new root even if nothing pushed it). The old roots
   * then stay trusted for `overlapMs` more (at least svidTtlMs, so every SVID the old root signed
   * expires first). `prepareMs: 0` activates at once: only for a mesh without running workloads,
   * which would refuse the new certificates until they learn the new root. WEFT_E_CA_ROTATION
   * while a rotation is prepared or in its overlap.
   */
  async startRotation(
    opts: { overlapMs?: number; prepareMs?: number; supplied?: SuppliedCa } = {},
  ): Promise<CaStatus> {
    const overlapMs = opts.overlapMs ?? this.config.rotationOverlapMs;
    const prepareMs = opts.prepareMs ?? this.config.rotationPrepareMs;
    const problems: FieldError[] = [];
    if (!Number.isSafeInteger(overlapMs) || overlapMs < this.config.svidTtlMs)
      problems.push({ path: 'overlapMs', message: overlapTooShort(this.config.svidTtlMs) });
    if (!Number.isSafeInteger(prepareMs) || prepareMs < 0 || prepareMs > MAX_PREPARE_MS)
      problems.push({
        path: 'prepareMs',
        message: `must be a whole number of ms from 0 to ${MAX_PREPARE_MS} (${formatDuration(MAX_PREPARE_MS)})`,
      });
    if (problems.length > 0) throw validationError('invalid rotation', problems);
    const now = this.now();
    const loaded = await this.current();
    const { state } = viewAt(loaded, now);
    if (state.prepared) throw rotationBeingPrepared(state.prepared);
    if (state.retiring)
      throw new WeftError(
        'WEFT_E_CA_ROTATION',
        `a rotation is in its overlap until ${new Date(state.retiring.trustedUntil).toISOString()} ` +
          `(CA ${state.retiring.id} still trusted); wait for it, or end it now with finishRotation() ` +
          '(`weft ca finish`)',
      );
    const material = opts.supplied
      ? validateSuppliedCa(opts.supplied, this.config.trustDomain, now)
      : await generateRoot(this.config.trustDomain, now, this.config.rootTtlMs);
    if (material.certs.id === state.active.id)
      throw new WeftError(
        'WEFT_E_CA_ROTATION',
        `the supplied CA is already the active one (${state.active.id})`,
      );
    const prepared = { authority: material.certs, activateAt: now + prepareMs, overlapMs };
    const next: CaState = { version: 1, trustDomain: state.trustDomain, active: state.active, prepared };
    // Prepared for no time at all: written active at once, as the clock would read it.
    const written = prepareMs === 0 ? promote(next, prepared) : next;
    await this.write(loaded, written, material, 'start the rotation');
    this.log.info(
      {
        from: state.active.id,
        to: material.certs.id,
        activateAt: new Date(prepared.activateAt).toISOString(),
        trustedUntil: new Date(prepared.activateAt + overlapMs).toISOString(),
      },
      prepareMs === 0
        ? 'CA rotation started; the new root signs now'
        : 'CA rotation prepared; the new root is trusted',
    );
    return this.status();
  }

  /**
   * Ends a rotation's overlap now: the old roots leave the bundle, and SVIDs they signed stop
   * verifying. Returns whether there was an overlap to end. While a rotation is only prepared
   * there is none (the old root still signs): WEFT_E_CA_ROTATION.
   */
  async finishRotation(): Promise<boolean> {
    const loaded = await this.current();
    const { state } = viewAt(loaded, this.now());
    if (state.prepared) throw rotationBeingPrepared(state.prepared);
    if (!state.retiring) return false;
    const { retiring: _dropped, ...rest } = state;
    await this.write(loaded, rest, undefined, 'finish the rotation');
    this.log.info({ dropped: state.retiring.id }, 'CA rotation finished; old roots left the trust bundle');
    return true;
  }

  /**
   * Housekeeping for the control plane to call when a phase ends (status().nextChangeAt) and now
   * and then: records what the clock already decided (a prepared authority that is now active,
   * with the old key removed; an overlap that is over). Returns whether it changed anything;
   * another replica doing it first is not an error.
   */
  async maintain(): Promise<boolean> {
    const loaded = await this.current();
    const view = viewAt(loaded, this.now());
    if (!view.changed) return false;
    try {
      await this.write(loaded, view.state, undefined, "record the rotation's progress");
    } catch (err) {
      if (err instanceof WeftError && err.code === 'WEFT_E_CA_ROTATION') return false;
      throw err;
    }
    if (loaded.state.prepared && !view.state.prepared)
      this.log.info(
        { active: view.state.active.id, retiring: loaded.state.active.id },
        'CA rotation: the new root signs now; the old root stays trusted for the overlap',
      );
    if (loaded.state.retiring && !view.state.retiring)
      this.log.info(
        { dropped: loaded.state.retiring.id },
        'CA rotation over; old roots left the trust bundle',
      );
    return true;
  }

  // ---- internals

  /** The CA at `now`: see viewAt. */
  private async view(now: number): Promise<View> {
    return viewAt(await this.current(), now);
  }

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

  /**
   * Replaces the stored state `from` by `next`, if nobody changed it meanwhile: stores the key of
   * `material`, and deletes the keys of authorities `from` had and `next` no longer has.
   */
  private async write(
    from: Loaded,
    next: CaState,
    material: NewAuthority | undefined,
    what: string,
  ): Promise<void> {
    const keep = new Set(keyIdsOf(next));
    const drop = keyIdsOf(from.state).filter((id) => !keep.has(id));
    try {
      await writeState(this.store, next, material, drop, [
        { key: CA_STATE_KEY, modRevision: from.modRevision },
      ]);
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
    const loaded = this.loaded;
    const { state } = viewAt(loaded, this.now());
    const material = validateSuppliedCa(supplied, this.config.trustDomain, this.now());
    // A replica restarted with the material a rotation is preparing: nothing to do.
    if (material.certs.id === state.active.id || material.certs.id === state.prepared?.authority.id) return;
    if (
      !sameSet(material.certs.trustAnchorsPem.map(fingerprint), state.active.trustAnchorsPem.map(fingerprint))
    )
      throw new WeftError(
        'WEFT_E_CA_ROTATION',
        `the supplied CA has other roots than the stored CA ${state.active.id}; switching directly would ` +
          'break every running workload: start a rotation with it instead (`weft ca rotate --ca-cert FILE ' +
          '--ca-key FILE`, or startRotation({ supplied })); or, if the stored CA is the newer one (a ' +
          'rotation already happened), update or drop the supplied material',
      );
    const next: CaState = { ...state, active: material.certs };
    await this.write(loaded, next, material, 'adopt the supplied CA');
    this.log.info(
      { from: state.active.id, to: material.certs.id },
      'CA signing certificate replaced (same roots)',
    );
  }
}

async function readState(store: Store): Promise<Loaded | undefined> {
  // The state and its keys are several reads; a rotation between them deletes a key just read
  // for. Then the state has moved on, and reading again gives a matching set.
  for (let attempt = 0; ; attempt++) {
    const kv = await store.get(CA_STATE_KEY);
    if (!kv) return undefined;
    const state = decodeRecord(caStateSchema, CA_STATE_KEY, kv.value);
    const keys: LoadedAuthority[] = [];
    let missing: string | undefined;
    for (const [certs, what] of [
      [state.active, 'the active CA'],
      ...(state.prepared ? [[state.prepared.authority, 'the prepared CA'] as const] : []),
    ] as const) {
      const keyKey = caKeyRecordKey(certs.id);
      const keyKv = await store.get(keyKey);
      if (!keyKv) {
        missing = `${keyKey} (${what}'s key)`;
        break;
      }
      const record = decodeRecord(caKeyRecordSchema, keyKey, keyKv.value);
      keys.push(await loadAuthority(certs as AuthorityCerts, record.privateKeyPem));
    }
    if (missing !== undefined) {
      const now = await store.get(CA_STATE_KEY);
      if (now && now.modRevision !== kv.modRevision && attempt < 10) continue;
      throw new WeftError('WEFT_E_STORE_CORRUPT', `${missing} is missing; restore it from a backup`);
    }
    return { modRevision: kv.modRevision, state, active: keys[0]!, prepared: keys[1] };
  }
}

async function writeState(
  store: Store,
  state: CaState,
  material: NewAuthority | undefined,
  dropKeysOf: readonly string[],
  conditions: TxnCondition[],
): Promise<void> {
  const ops: TxnOp[] = [{ type: 'put', key: CA_STATE_KEY, value: JSON.stringify(state) }];
  if (material)
    ops.push({
      type: 'put',
      key: caKeyRecordKey(material.certs.id),
      value: JSON.stringify({ id: material.certs.id, privateKeyPem: material.privateKeyPem }),
    });
  for (const id of dropKeysOf)
    if (id !== material?.certs.id) ops.push({ type: 'delete', key: caKeyRecordKey(id) });
  await store.txn(ops, conditions);
}

/** The authorities whose keys a state needs: the active one, and a prepared one. */
function keyIdsOf(state: CaState): string[] {
  return [state.active.id, ...(state.prepared ? [state.prepared.authority.id] : [])];
}

/**
 * The CA as it is at `now`: a prepared authority whose activateAt has come is the active one
 * (the old one retiring, trusted for the prepared overlap), and retiring roots whose overlap is
 * over are gone. Every replica computes the same from the same stored times.
 */
function viewAt(loaded: Loaded, now: number): View {
  let state = loaded.state;
  let signer = loaded.active;
  let changed = false;
  if (state.prepared && now >= state.prepared.activateAt && loaded.prepared) {
    state = promote(state, state.prepared);
    signer = loaded.prepared;
    changed = true;
  }
  if (state.retiring && now >= state.retiring.trustedUntil) {
    const { retiring: _over, ...rest } = state;
    state = rest;
    changed = true;
  }
  return { state, signer, changed };
}

/** `state` with its prepared authority active and the active one retiring. */
function promote(state: CaState, prepared: NonNullable<CaState['prepared']>): CaState {
  return {
    version: 1,
    trustDomain: state.trustDomain,
    active: prepared.authority,
    retiring: {
      id: state.active.id,
      trustAnchorsPem: state.active.trustAnchorsPem,
      trustedUntil: prepared.activateAt + prepared.overlapMs,
      retiredAt: prepared.activateAt,
    },
  };
}

/**
 * The bundle of a state (already viewed at a moment). The root the active authority's chain
 * leads to comes first: a workload that finds it is not the root of its own SVID knows the
 * signer changed, and renews rather than wait for its half-life.
 */
function bundleOf(state: CaState): string[] {
  const active = state.active as AuthorityCerts;
  const roots = [anchorOf(active), ...active.trustAnchorsPem];
  if (state.prepared) roots.push(...state.prepared.authority.trustAnchorsPem);
  if (state.retiring) roots.push(...state.retiring.trustAnchorsPem);
  const seen = new Set<string>();
  return roots.filter((pem) => {
    const fp = fingerprint(pem);
    if (seen.has(fp)) return false;
    seen.add(fp);
    return true;
  });
}

function authorityInfo(authority: LoadedAuthority): AuthorityInfo {
  const cert = authority.signer.certificate;
  return {
    id: authority.certs.id,
    source: authority.certs.source,
    subject: cert.subject,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    roots: authority.certs.trustAnchorsPem.map(fingerprint),
  };
}

function rotationBeingPrepared(prepared: NonNullable<CaState['prepared']>): WeftError {
  return new WeftError(
    'WEFT_E_CA_ROTATION',
    `a rotation is being prepared: CA ${prepared.authority.id} is trusted, and signs from ` +
      `${new Date(prepared.activateAt).toISOString()}; until then the current root signs and there is ` +
      'no overlap to end. Wait for the activation (`weft ca status` shows it), then for the overlap to end ' +
      'or end it with finishRotation() (`weft ca finish`)',
  );
}

/** SHA-256 fingerprint, colon-separated hex as openssl prints it. */
function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

/** `90000` → `1m30s`; `86400000` → `24h`: how the CLI takes durations. */
export function formatDuration(ms: number): string {
  let s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const text = `${h > 0 ? `${h}h` : ''}${m > 0 ? `${m}m` : ''}${s > 0 ? `${s}s` : ''}`;
  return text === '' ? '0s' : text;
}

function overlapTooShort(svidTtlMs: number): string {
  return (
    `must be at least the SVID lifetime, svidTtlMs (${svidTtlMs} ms = ${formatDuration(svidTtlMs)}): SVIDs ` +
    'signed by the old root live that long, and would stop verifying if their root left the bundle first ' +
    '(use finishRotation() to end an overlap early on purpose)'
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
