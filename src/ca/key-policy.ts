// Which keys Weft accepts and how it signs with them, in one place: EC P-256 and P-384, and RSA
// of 2048 to 8192 bits. Anything else (smaller RSA, other curves, Ed25519, DSA) is refused with
// a message that lists what is allowed. The RSA upper bound keeps one hostile CSR from costing
// seconds of CPU.
import { createPublicKey, type KeyObject } from 'node:crypto';

export const ALLOWED_KEYS = 'EC P-256 or P-384, or RSA of 2048 to 8192 bits';

const CURVES: Record<string, { name: 'P-256' | 'P-384' }> = {
  prime256v1: { name: 'P-256' },
  secp384r1: { name: 'P-384' },
};

export type KeyCheck =
  | { ok: true; kind: 'ec'; curve: 'P-256' | 'P-384'; description: string }
  | { ok: true; kind: 'rsa'; bits: number; description: string }
  | { ok: false; problem: string };

/** Checks a public (or private) key against the policy. */
export function checkKey(key: KeyObject): KeyCheck {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'ec') {
    const curve = details.namedCurve ?? 'unknown';
    const known = CURVES[curve];
    if (known) return { ok: true, kind: 'ec', curve: known.name, description: `EC ${known.name}` };
    return { ok: false, problem: `the key is on curve ${curve}; allowed keys: ${ALLOWED_KEYS}` };
  }
  if (type === 'rsa') {
    const bits = details.modulusLength ?? 0;
    if (bits >= 2048 && bits <= 8192) return { ok: true, kind: 'rsa', bits, description: `RSA ${bits}` };
    return {
      ok: false,
      problem: `the key is RSA ${bits} bits; allowed keys: ${ALLOWED_KEYS}`,
    };
  }
  return { ok: false, problem: `the key type is ${type ?? 'unknown'}; allowed keys: ${ALLOWED_KEYS}` };
}

/** Checks a SubjectPublicKeyInfo; an SPKI that Node cannot read at all is reported as such. */
export function checkSpki(spki: Uint8Array): KeyCheck {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch {
    return { ok: false, problem: `the public key cannot be read; allowed keys: ${ALLOWED_KEYS}` };
  }
  return checkKey(key);
}

/** WebCrypto parameters to import an allowed private key and sign certificates with it. */
export function signingParams(check: Extract<KeyCheck, { ok: true }>): {
  importAlgorithm: { name: string; namedCurve?: string; hash?: string };
  signingAlgorithm: { name: string; hash: string };
} {
  if (check.kind === 'ec') {
    const hash = check.curve === 'P-384' ? 'SHA-384' : 'SHA-256';
    return {
      importAlgorithm: { name: 'ECDSA', namedCurve: check.curve },
      signingAlgorithm: { name: 'ECDSA', hash },
    };
  }
  return {
    importAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  };
}
