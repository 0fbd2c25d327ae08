// Building X.509-SVIDs (spec: SPIFFE X509-SVID.md) and the certificates around them. A leaf
// SVID: empty subject, the SPIFFE ID as its only (critical) URI subjectAltName, cA false,
// keyUsage digitalSignature (critical), extKeyUsage serverAuth + clientAuth. A signing
// certificate: cA true, keyUsage keyCertSign + cRLSign (critical), the trust domain's SPIFFE ID.
import { randomBytes, type webcrypto } from 'node:crypto';
import { BACKDATE_MS } from './ca-material.js';
import { x509 } from './x509-lib.js';

type CryptoKey = webcrypto.CryptoKey;

/** What signs SVIDs: the signing certificate (a root or an intermediate) and its private key. */
export interface SigningKey {
  certificate: x509.X509Certificate;
  privateKey: CryptoKey;
  signingAlgorithm: { name: string; hash: string };
}

/** A positive 127-bit serial number, hex (RFC 5280: positive, at most 20 octets, unpredictable). */
export function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString('hex');
}

/** The signer's subjectKeyIdentifier, which a leaf's authorityKeyIdentifier must repeat. */
function subjectKeyId(cert: x509.X509Certificate): string | undefined {
  return cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
}

export async function buildLeafSvid(opts: {
  signer: SigningKey;
  publicKey: x509.PublicKey;
  spiffeId: string;
  notBefore: Date;
  notAfter: Date;
}): Promise<x509.X509Certificate> {
  const aki = subjectKeyId(opts.signer.certificate);
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: '',
    issuer: opts.signer.certificate.subjectName,
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
    publicKey: opts.publicKey,
    signingKey: opts.signer.privateKey,
    signingAlgorithm: opts.signer.signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      // Critical because the subject is empty (RFC 5280 4.1.2.6).
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: opts.spiffeId }], true),
      await x509.SubjectKeyIdentifierExtension.create(opts.publicKey),
      ...(aki ? [new x509.AuthorityKeyIdentifierExtension(aki)] : []),
    ],
  });
}

/** A self-signed root for a trust domain (what a first start without a supplied CA creates). */
export async function buildSelfSignedRoot(opts: {
  keys: { privateKey: CryptoKey; publicKey: CryptoKey };
  signingAlgorithm: { name: string; hash: string };
  commonName: string;
  trustDomainId: string;
  notBefore: Date;
  notAfter: Date;
}): Promise<x509.X509Certificate> {
  const name = `O=Weft, CN=${opts.commonName}`;
  const ski = await x509.SubjectKeyIdentifierExtension.create(opts.keys.publicKey);
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: name,
    issuer: name,
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
    publicKey: opts.keys.publicKey,
    signingKey: opts.keys.privateKey,
    signingAlgorithm: opts.signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: opts.trustDomainId }]),
      ski,
      new x509.AuthorityKeyIdentifierExtension(ski.keyId),
    ],
  });
}

/**
 * When a certificate should be renewed: halfway through its lifetime, so a failed attempt
 * leaves the other half for retries. The lifetime counts from issuance: the minute notBefore
 * is backdated for clock skew is left out, or a 1-minute SVID would be due at once and renewed
 * in a loop.
 */
export function renewalTime(cert: { notBefore: Date; notAfter: Date } | string): Date {
  const c = typeof cert === 'string' ? new x509.X509Certificate(cert) : cert;
  const from = Math.min(c.notBefore.getTime() + BACKDATE_MS, c.notAfter.getTime());
  return new Date(from + Math.floor((c.notAfter.getTime() - from) / 2));
}
