// The certificate authority's operator surface on the REST API (api-server.ts routes it, admin
// only): its status with how far the trust bundle has reached the proxies connected here, the
// start of a root rotation, and the early end of its overlap. A bring-your-own CA's private key
// is taken from a request body only where nobody on the way can read it: over TLS (the workload
// API listener) or from a loopback address. Anywhere else it is refused, and said to be exposed.

import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { CaStatus, SuppliedCa } from '../ca/index.js';
import { WeftError, type FieldError } from '../errors.js';
import type { ProxyStatus } from '../xds/ads-server.js';
import { TypeUrl } from '../xds/types.js';
import { SDS_ROOT_CA } from '../compiler/mtls.js';

/** How far the bundle served as SDS `ROOTCA` has reached the proxies of this control plane. */
export interface BundlePropagation {
  /** SHA-256 fingerprints of the roots served now, the one the CA signs under first. */
  roots: string[];
  /** When this control plane started serving it (ISO 8601). */
  since?: string;
  /** Proxies with an xDS stream to this control plane (another replica's are not seen here). */
  connected: number;
  /** Of them, those subscribed to `ROOTCA`; the others learn roots only with their next SVID. */
  subscribed: number;
  /** Of those, the ones that ACKed the bundle served now. */
  current: number;
  /** Node ids of subscribed proxies that have not ACKed it (yet); at most 20. */
  waiting: string[];
}

const MAX_WAITING_LISTED = 20;

/**
 * A proxy has the bundle when its last `ROOTCA` response was sent after the bundle changed (every
 * change is pushed to every subscriber, and a new subscriber is sent the current one) and it
 * ACKed that response: nothing pending, and its last NACK, if any, was for an earlier one.
 */
export function bundlePropagation(
  proxies: readonly ProxyStatus[],
  bundle: { pem: string; since: number } | undefined,
): BundlePropagation {
  const out: BundlePropagation = {
    roots: bundle ? fingerprints(bundle.pem) : [],
    ...(bundle ? { since: new Date(bundle.since).toISOString() } : {}),
    connected: proxies.length,
    subscribed: 0,
    current: 0,
    waiting: [],
  };
  for (const p of proxies) {
    const sds = p.types[TypeUrl.Secret];
    if (!sds || !(sds.wildcard || sds.names.includes(SDS_ROOT_CA))) continue;
    out.subscribed++;
    const sent = sds.lastSent;
    const acked =
      bundle !== undefined &&
      sent !== undefined &&
      Date.parse(sent.at) >= bundle.since &&
      !sds.pending &&
      sds.lastNack?.nonce !== sent.nonce;
    if (acked) out.current++;
    else if (out.waiting.length < MAX_WAITING_LISTED) out.waiting.push(p.node.id);
  }
  return out;
}

function fingerprints(pem: string): string[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b).fingerprint256);
}

/** GET /api/v1/ca: the CA's status and the bundle's reach. */
export function caStatusBody(status: CaStatus, propagation: BundlePropagation): object {
  return { ...status, trustBundle: propagation };
}

/** What POST /api/v1/ca/rotate asks of CertificateAuthority.startRotation. */
export interface RotationRequest {
  overlapMs?: number;
  prepareMs?: number;
  supplied?: SuppliedCa;
}

const ROTATE_FIELDS = ['overlapSeconds', 'prepareSeconds', 'caCert', 'caKey', 'caBundle'] as const;

/** The body's field for each option and each part of supplied material, for error paths. */
const FIELD_OF: Record<string, string> = {
  overlapMs: 'overlapSeconds',
  prepareMs: 'prepareSeconds',
  certificatePem: 'caCert',
  intermediatesPem: 'caCert',
  privateKeyPem: 'caKey',
  trustAnchorsPem: 'caBundle',
};

/**
 * Reads a rotate request: `{"overlapSeconds"?, "prepareSeconds"?, "caCert"?, "caKey"?,
 * "caBundle"?}`. Every problem is reported with its field (WEFT_E_VALIDATION); a CA key sent
 * where it could be read on the way is WEFT_E_BAD_REQUEST.
 */
export function readRotationRequest(body: Record<string, unknown>, req: IncomingMessage): RotationRequest {
  // First: whatever else is wrong with the request, a key that came this way is exposed.
  if (body.caKey !== undefined && !keyTransportIsPrivate(req))
    throw new WeftError(
      'WEFT_E_BAD_REQUEST',
      `a CA private key is taken only over TLS (the workload API) or from a loopback address, and this ` +
        `request came in plain HTTP from ${req.socket.remoteAddress ?? 'an unknown address'}: consider that ` +
        'key exposed and make another. Run `weft ca rotate --ca-cert … --ca-key …` on the control plane ' +
        'host against its API on a loopback address, or through a TLS terminator on that host',
    );
  const errors: FieldError[] = [];
  for (const key of Object.keys(body))
    if (!(ROTATE_FIELDS as readonly string[]).includes(key))
      errors.push({ path: key, message: `unknown field; allowed: ${ROTATE_FIELDS.join(', ')}` });
  const out: RotationRequest = {};
  for (const [field, option] of [
    ['overlapSeconds', 'overlapMs'],
    ['prepareSeconds', 'prepareMs'],
  ] as const) {
    const v = body[field];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      errors.push({ path: field, message: 'must be a number of seconds, ≥ 0' });
    else out[option] = Math.round(v * 1000);
  }
  const pem = (field: 'caCert' | 'caKey' | 'caBundle'): string | undefined => {
    const v = body[field];
    if (v === undefined) return undefined;
    if (typeof v === 'string' && v.trim() !== '') return v;
    errors.push({ path: field, message: 'must be PEM text' });
    return undefined;
  };
  const [cert, key, bundle] = [pem('caCert'), pem('caKey'), pem('caBundle')];
  const given = ['caCert', 'caKey', 'caBundle'].filter((f) => body[f] !== undefined);
  if (given.length > 0 && (body.caCert === undefined || body.caKey === undefined))
    errors.push({
      path: body.caCert === undefined ? 'caCert' : 'caKey',
      message: 'caCert and caKey go together (caBundle is optional, with them)',
    });
  if (errors.length > 0)
    throw new WeftError(
      'WEFT_E_VALIDATION',
      `invalid rotation request: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`,
      errors,
    );
  if (cert !== undefined && key !== undefined)
    out.supplied = {
      certificatePem: cert,
      privateKeyPem: key,
      ...(bundle === undefined ? {} : { trustAnchorsPem: bundle }),
    };
  return out;
}

/** Whether nobody between the caller and us could read the body: TLS, or loopback. */
function keyTransportIsPrivate(req: IncomingMessage): boolean {
  const socket = req.socket as Partial<TLSSocket>;
  if (socket.encrypted === true) return true;
  const a = req.socket.remoteAddress ?? '';
  return a === '::1' || a.startsWith('127.') || a.startsWith('::ffff:127.');
}

/**
 * A CA error with the request's field names in its paths and message (`overlapSeconds`,
 * `caCert[0]`) rather than the library's (`overlapMs`, `certificatePem[0]`).
 */
export function inRequestTerms(err: unknown): unknown {
  if (!(err instanceof WeftError) || err.errors.length === 0) return err;
  const rename = (text: string): string =>
    text.replace(
      /\b(overlapMs|prepareMs|certificatePem|intermediatesPem|privateKeyPem|trustAnchorsPem)\b/g,
      (name) => FIELD_OF[name] ?? name,
    );
  return new WeftError(
    err.code,
    rename(err.message),
    err.errors.map((e) => ({ ...e, path: rename(e.path) })),
  );
}
