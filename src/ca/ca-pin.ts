// The CA pin a join token carries: `weft-jt-<secret>.<pin>`. The secret is what the control plane
// checks; the pin is for the workload, which fetches the trust bundle over plain HTTP and must
// not trust a bundle that the token's maker did not vouch for (as kubeadm's
// --discovery-token-ca-cert-hash). A pin is `sha256-` and the base64url (no padding) SHA-256 of
// a root certificate's DER SubjectPublicKeyInfo: RFC 7469's pin-sha256 in the URL-safe alphabet,
// so that a whole token is one RFC 6750 bearer token (no ':' or '+/=') and needs no quoting in a
// shell, a header or gRPC metadata. Hashing the public key, not the certificate, keeps the pin
// valid across a root re-issued with the same key. node:crypto only: the sidecar loads this.

import { createHash, X509Certificate } from 'node:crypto';
import { readPemBlocks } from './pem.js';

export const TOKEN_PREFIX = 'weft-jt-';
export const CA_PIN_PREFIX = 'sha256-';
/** The secret part: the prefix and 32 random bytes in base64url. */
const SECRET_SHAPE = /^weft-jt-[A-Za-z0-9_-]{43}$/;
const PIN_SHAPE = /^sha256-[A-Za-z0-9_-]{43}$/;

/**
 * A join token split at its first `.`: `secret` is `weft-jt-…` (what is hashed and stored),
 * `pin` what follows, if anything (unchecked here: see isCaPin). Whether `secret` has the
 * right shape is not checked either; the token store judges it.
 */
export function splitJoinToken(token: string): { secret: string; pin: string | undefined } {
  const dot = token.indexOf('.');
  return dot < 0
    ? { secret: token, pin: undefined }
    : { secret: token.slice(0, dot), pin: token.slice(dot + 1) };
}

/** Whether `secret` is a join token's secret part: `weft-jt-` and 43 base64url characters. */
export function isTokenSecret(secret: string): boolean {
  return SECRET_SHAPE.test(secret);
}

/** Whether `pin` is a CA pin this version understands: `sha256-` and 43 base64url characters. */
export function isCaPin(pin: string): boolean {
  return PIN_SHAPE.test(pin);
}

/** The token the workload is given: the secret, `.`, the pin. */
export function pinnedToken(secret: string, pin: string): string {
  return `${secret}.${pin}`;
}

/** The pin of a certificate (PEM or DER): `sha256-` + base64url(SHA-256(DER SubjectPublicKeyInfo)). */
export function caPinOf(cert: string | Buffer | X509Certificate): string {
  const x = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  const spki = x.publicKey.export({ type: 'spki', format: 'der' });
  return CA_PIN_PREFIX + createHash('sha256').update(spki).digest('base64url');
}

/** Each certificate of a PEM bundle with its pin; blocks that are not readable certificates are skipped. */
export function bundlePins(bundlePem: string): Array<{ pem: string; pin: string }> {
  const out: Array<{ pem: string; pin: string }> = [];
  for (const block of readPemBlocks(bundlePem).blocks) {
    if (block.label !== 'CERTIFICATE') continue;
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block.der);
    } catch {
      continue;
    }
    out.push({ pem: cert.toString(), pin: caPinOf(cert) });
  }
  return out;
}
