// The workload (sidecar) side of issuance, as pure functions: make a key pair that never leaves
// the process, and a CSR asking for one SPIFFE ID. Tests use the very same functions, so what the
// CA is tested against is what sidecars send.
import type { webcrypto } from 'node:crypto';
import { toPem } from './pem.js';
import { subtle, x509 } from './x509-lib.js';

const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;

export interface WorkloadKey {
  /** For WebCrypto signing (the CSR). */
  keys: CryptoKeyPair;
  /** PKCS#8 PEM, for node:tls (`key` option). Keep it in memory; never send it anywhere. */
  privateKeyPem: string;
}

type CryptoKeyPair = webcrypto.CryptoKeyPair;

/** A fresh ECDSA P-256 key pair. */
export async function generateWorkloadKey(): Promise<WorkloadKey> {
  const keys = await subtle.generateKey(P256, true, ['sign', 'verify']);
  const pkcs8 = await subtle.exportKey('pkcs8', keys.privateKey);
  return { keys, privateKeyPem: toPem('PRIVATE KEY', pkcs8) };
}

/**
 * A PKCS#10 request (PEM) for `spiffeId` as its only subjectAltName (a URI), with an empty
 * subject, as the X.509-SVID spec has it. Signed with ECDSA SHA-256.
 */
export async function createCsr(key: WorkloadKey, spiffeId: string): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys: key.keys,
    signingAlgorithm: { ...P256, hash: 'SHA-256' },
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], true)],
  });
  return csr.toString('pem');
}
