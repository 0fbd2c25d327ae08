// Join tokens: how a workload without an SVID proves who it is when it first asks for one. A token
// is shown once, at creation; the store keeps only its SHA-256 with the identity it entitles, its
// expiry, uses left and a revoked flag. Consuming a use is a compare-and-swap on the record's
// modRevision, so two concurrent consumers of a single-use token cannot both succeed, on one
// control plane or on several sharing a store. A token may carry a CA pin after a `.`
// (ca-pin.ts): that is for the workload; here only the secret before it counts, so a token is
// judged the same with its pin, without it (as older tokens are), or with a wrong one.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { WeftError, type FieldError, type WeftErrorCode } from '../errors.js';
import { dns1123Label, dns1123Subdomain } from '../resources/formats.js';
import { boolean, int, object, string, type Infer } from '../schema/schema.js';
import type { KeyValue, Store } from '../store/store.js';
import { decodeRecord } from './ca-records.js';
import { isCaPin, isTokenSecret, pinnedToken, splitJoinToken, TOKEN_PREFIX } from './ca-pin.js';
import type { WorkloadIdentity } from './spiffe-id.js';

export { TOKEN_PREFIX };
export const TOKENS_PREFIX = '/weft/tokens/';
const TOKEN_BYTES = 32;
/** The record id: the first 12 bytes of the token's SHA-256, hex. Not a secret. */
const ID_HEX = 24;
const MAX_CAS_ATTEMPTS = 100;

const SECOND = 1000;
const DAY = 24 * 3600 * SECOND;
export const DEFAULT_TOKEN_TTL_MS = 3600 * SECOND;

export const createTokenSchema = object({
  namespace: dns1123Label().describe('Namespace the token entitles.'),
  serviceAccount: dns1123Subdomain().describe('Service account the token entitles.'),
  ttlMs: int({ min: SECOND, max: 365 * DAY })
    .default(DEFAULT_TOKEN_TTL_MS)
    .describe('How long the token is valid, in ms.'),
  maxUses: int({ min: 0, max: 1_000_000 })
    .default(1)
    .describe('How many times it may be consumed; 0 = unlimited until it expires.'),
});
export type CreateTokenRequest = Partial<Infer<typeof createTokenSchema>> & WorkloadIdentity;

const tokenRecordSchema = object({
  id: string({ minLength: ID_HEX, maxLength: ID_HEX }),
  sha256: string({ minLength: 64, maxLength: 64 }),
  namespace: dns1123Label(),
  serviceAccount: dns1123Subdomain(),
  createdAt: int({ min: 0 }),
  expiresAt: int({ min: 0 }),
  maxUses: int({ min: 0 }),
  uses: int({ min: 0 }),
  revoked: boolean(),
});
type TokenRecord = Infer<typeof tokenRecordSchema>;

/** What a token entitles, returned by verify() and consume(). */
export interface TokenGrant extends WorkloadIdentity {
  tokenId: string;
  /** Uses left after this one; null when unlimited. */
  usesLeft: number | null;
  /** When the token stops being valid (ms since the epoch). */
  expiresAt: number;
}

export interface CreatedToken extends TokenInfo {
  /** The secret, followed by `.` and the CA pin when one was given. Shown only here; the store cannot give it back. */
  token: string;
  /** The CA pin in the token, if any. */
  caPin?: string;
}

export interface CreateTokenOptions {
  /** Appended to the token after a `.` (ca-pin.ts): the root the workload must find in its trust bundle. */
  caPin?: string;
}

/** A token as list() shows it: everything but secrets. */
export interface TokenInfo extends WorkloadIdentity {
  id: string;
  createdAt: Date;
  expiresAt: Date;
  maxUses: number;
  uses: number;
  revoked: boolean;
}

export const TOKEN_REFUSAL_REASONS = ['unknown', 'expired', 'revoked', 'used_up'] as const;
export type TokenRefusalReason = (typeof TOKEN_REFUSAL_REASONS)[number];
const REFUSAL_CODES: Record<TokenRefusalReason, WeftErrorCode> = {
  unknown: 'WEFT_E_TOKEN_UNKNOWN',
  expired: 'WEFT_E_TOKEN_EXPIRED',
  revoked: 'WEFT_E_TOKEN_REVOKED',
  used_up: 'WEFT_E_TOKEN_USED_UP',
};

export class JoinTokens {
  private readonly refused = Object.fromEntries(TOKEN_REFUSAL_REASONS.map((r) => [r, 0])) as Record<
    TokenRefusalReason,
    number
  >;

  /** Who is to hear of each token's revocation (xDS streams opened with it). */
  private readonly revocationListeners = new Map<string, Set<() => void>>();
  /** Tokens revoked through this instance, so that a listener that comes late still hears it. */
  private readonly revokedHere = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Calls `cb` once if the token with this id is revoked (at once, soon, if it already was
   * through this instance); returns the unsubscribe function. Revocations reach the listeners of
   * the control plane that made them: Weft runs one control plane per store.
   */
  onRevoked(tokenId: string, cb: () => void): () => void {
    if (this.revokedHere.has(tokenId)) {
      queueMicrotask(cb);
      return () => undefined;
    }
    let set = this.revocationListeners.get(tokenId);
    if (set === undefined) this.revocationListeners.set(tokenId, (set = new Set()));
    set.add(cb);
    return () => {
      set.delete(cb);
      if (set.size === 0) this.revocationListeners.delete(tokenId);
    };
  }

  private revoked(tokenId: string): void {
    this.revokedHere.add(tokenId);
    const set = this.revocationListeners.get(tokenId);
    this.revocationListeners.delete(tokenId);
    for (const cb of set ?? []) cb();
  }

  /**
   * Makes a token; the returned `token` is the only copy of the secret. WEFT_E_VALIDATION on bad
   * input (a `caPin` that is not one is a programming error, reported the same way).
   */
  async create(req: CreateTokenRequest, opts: CreateTokenOptions = {}): Promise<CreatedToken> {
    if (opts.caPin !== undefined && !isCaPin(opts.caPin))
      throw new WeftError(
        'WEFT_E_VALIDATION',
        'invalid join token request: caPin: must be sha256-<43 base64url>',
        [{ path: 'caPin', message: 'must be sha256- followed by 43 base64url characters' }],
      );
    const checked = createTokenSchema.validate(req);
    if (!checked.ok) {
      const errors: FieldError[] = checked.errors;
      throw new WeftError(
        'WEFT_E_VALIDATION',
        `invalid join token request: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`,
        errors,
      );
    }
    const { namespace, serviceAccount, ttlMs, maxUses } = checked.value;
    // An id collision (96 bits) is as good as impossible; the create-only guard makes it harmless.
    for (let attempt = 0; ; attempt++) {
      const secret = TOKEN_PREFIX + randomBytes(TOKEN_BYTES).toString('base64url');
      const sha256 = hashToken(secret);
      const now = this.now();
      const record: TokenRecord = {
        id: sha256.slice(0, ID_HEX),
        sha256,
        namespace,
        serviceAccount,
        createdAt: now,
        expiresAt: now + ttlMs,
        maxUses,
        uses: 0,
        revoked: false,
      };
      const key = TOKENS_PREFIX + record.id;
      try {
        await this.store.txn(
          [{ type: 'put', key, value: JSON.stringify(record) }],
          [{ key, modRevision: 0 }],
        );
      } catch (err) {
        if (err instanceof WeftError && err.code === 'WEFT_E_CONFLICT' && attempt < 3) continue;
        throw err;
      }
      if (opts.caPin === undefined) return { token: secret, ...info(record) };
      return { token: pinnedToken(secret, opts.caPin), caPin: opts.caPin, ...info(record) };
    }
  }

  /** What `token` entitles, without using it up. Refusals: WEFT_E_TOKEN_UNKNOWN, _EXPIRED, _REVOKED, _USED_UP. */
  async verify(token: string): Promise<TokenGrant> {
    const { record } = await this.usable(token);
    return grant(record, record.maxUses === 0 ? null : record.maxUses - record.uses);
  }

  /** Uses `token` once and returns what it entitles; same refusals as verify(). Atomic. */
  async consume(token: string): Promise<TokenGrant> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const { kv, record } = await this.usable(token);
      const next: TokenRecord = { ...record, uses: record.uses + 1 };
      try {
        await this.store.txn(
          [{ type: 'put', key: kv.key, value: JSON.stringify(next) }],
          [{ key: kv.key, modRevision: kv.modRevision }],
        );
      } catch (err) {
        // Someone else consumed, revoked or pruned it meanwhile: judge again on the new record.
        if (err instanceof WeftError && err.code === 'WEFT_E_CONFLICT') continue;
        throw err;
      }
      return grant(next, next.maxUses === 0 ? null : next.maxUses - next.uses);
    }
    throw new WeftError('WEFT_E_UNAVAILABLE', 'the join token is being used by many callers at once; retry');
  }

  /** Revokes by id (as list() shows) or by the token itself (with or without its pin). WEFT_E_TOKEN_UNKNOWN if there is none. */
  async revoke(idOrToken: string): Promise<void> {
    if (typeof idOrToken !== 'string')
      throw new WeftError('WEFT_E_TOKEN_UNKNOWN', 'give a join token id or token');
    const id = idOrToken.startsWith(TOKEN_PREFIX)
      ? hashToken(splitJoinToken(idOrToken).secret).slice(0, ID_HEX)
      : idOrToken;
    const key = TOKENS_PREFIX + id;
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const kv = /^[0-9a-f]+$/.test(id) ? await this.store.get(key) : undefined;
      if (!kv)
        throw new WeftError(
          'WEFT_E_TOKEN_UNKNOWN',
          `no join token with id "${id.slice(0, 64)}"; list() shows the ids`,
        );
      const record = decodeRecord(tokenRecordSchema, key, kv.value);
      if (record.revoked) return this.revoked(id);
      try {
        await this.store.txn(
          [{ type: 'put', key, value: JSON.stringify({ ...record, revoked: true }) }],
          [{ key, modRevision: kv.modRevision }],
        );
        return this.revoked(id);
      } catch (err) {
        if (err instanceof WeftError && err.code === 'WEFT_E_CONFLICT') continue;
        throw err;
      }
    }
    throw new WeftError('WEFT_E_UNAVAILABLE', 'the join token kept changing while being revoked; retry');
  }

  /** Every token, without secrets, oldest first. */
  async list(): Promise<TokenInfo[]> {
    const { items } = await this.store.list(TOKENS_PREFIX);
    return items
      .map((kv) => info(decodeRecord(tokenRecordSchema, kv.key, kv.value)))
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.id.localeCompare(b.id));
  }

  /** Deletes tokens that can never be used again (expired, revoked or used up); returns how many. */
  async prune(): Promise<number> {
    const { items } = await this.store.list(TOKENS_PREFIX);
    let removed = 0;
    for (const kv of items) {
      const r = decodeRecord(tokenRecordSchema, kv.key, kv.value);
      if (!(r.revoked || this.now() >= r.expiresAt || (r.maxUses > 0 && r.uses >= r.maxUses))) continue;
      try {
        await this.store.txn(
          [{ type: 'delete', key: kv.key }],
          [{ key: kv.key, modRevision: kv.modRevision }],
        );
        this.revokedHere.delete(r.id);
        removed++;
      } catch (err) {
        if (!(err instanceof WeftError && err.code === 'WEFT_E_CONFLICT')) throw err;
      }
    }
    return removed;
  }

  /** Refusals so far, by reason (for metrics). */
  refusals(): Record<TokenRefusalReason, number> {
    return { ...this.refused };
  }

  /** The token's record if it can be used now, else the refusal (counted). */
  private async usable(token: string): Promise<{ kv: KeyValue; record: TokenRecord }> {
    // Only the secret counts: whatever follows the `.` (a pin, right or wrong) is the workload's.
    const secret = typeof token === 'string' ? splitJoinToken(token).secret : '';
    if (!isTokenSecret(secret))
      throw this.refuse(
        'unknown',
        `not a Weft join token (expected "${TOKEN_PREFIX}" and 43 base64url characters, optionally "." and a CA pin)`,
      );
    const sha256 = hashToken(secret);
    const key = TOKENS_PREFIX + sha256.slice(0, ID_HEX);
    const kv = await this.store.get(key);
    const record = kv ? decodeRecord(tokenRecordSchema, key, kv.value) : undefined;
    if (!kv || !record || !timingSafeEqual(Buffer.from(record.sha256, 'hex'), Buffer.from(sha256, 'hex')))
      throw this.refuse(
        'unknown',
        'unknown join token: it was never issued here, or was pruned; ask for a new one',
      );
    if (record.revoked)
      throw this.refuse('revoked', `join token ${record.id} was revoked; ask for a new one`);
    if (this.now() >= record.expiresAt)
      throw this.refuse(
        'expired',
        `join token ${record.id} expired at ${new Date(record.expiresAt).toISOString()}; ask for a new one`,
      );
    if (record.maxUses > 0 && record.uses >= record.maxUses)
      throw this.refuse(
        'used_up',
        `join token ${record.id} was already used ${record.uses === 1 ? 'once' : `${record.uses} times`} ` +
          `(its limit); ask for a new one`,
      );
    return { kv, record };
  }

  private refuse(reason: TokenRefusalReason, message: string): WeftError {
    this.refused[reason]++;
    return new WeftError(REFUSAL_CODES[reason], message);
  }
}

/** The stored hash: of the secret part alone (`weft-jt-…`), as before tokens carried pins. */
function hashToken(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

function grant(r: TokenRecord, usesLeft: number | null): TokenGrant {
  return {
    tokenId: r.id,
    namespace: r.namespace,
    serviceAccount: r.serviceAccount,
    usesLeft,
    expiresAt: r.expiresAt,
  };
}

function info(r: TokenRecord): TokenInfo {
  return {
    id: r.id,
    namespace: r.namespace,
    serviceAccount: r.serviceAccount,
    createdAt: new Date(r.createdAt),
    expiresAt: new Date(r.expiresAt),
    maxUses: r.maxUses,
    uses: r.uses,
    revoked: r.revoked,
  };
}
