// CA material: what signs SVIDs and what the trust bundle holds. Either a root generated on first
// start (ECDSA P-256), or material supplied by the operator (bring your own CA: a root, or an
// intermediate under a corporate or cert-manager root). Supplied material is checked in full
// before use and every problem is reported with the field it is in.
import {
  createHash,
  createPrivateKey,
  randomBytes,
  X509Certificate,
  type KeyObject,
  type webcrypto,
} from 'node:crypto';
import { WeftError, type FieldError } from '../errors.js';
import { checkKey, signingParams } from './key-policy.js';
import { readPemBlocks, toPem } from './pem.js';
import { parseSpiffeId, trustDomainSpiffeId, uriSans } from './spiffe-id.js';
import { buildSelfSignedRoot, type SigningKey } from './svid.js';
import { subtle, x509 } from './x509-lib.js';

/** Operator-supplied CA material, all PEM. */
export interface SuppliedCa {
  /**
   * The certificate that signs SVIDs: a root, or an intermediate. It may be followed by its
   * chain (as cert-manager's tls.crt may be): those are intermediates, except a self-signed one,
   * which is a root (the default trust anchor, never sent with SVIDs).
   */
  certificatePem: string;
  /** The signing certificate's private key, unencrypted (PKCS#8, SEC1 or PKCS#1 PEM). */
  privateKeyPem: string;
  /** Certificates between the signing certificate and the root, nearest first. */
  intermediatesPem?: string;
  /** The root(s): the trust bundle. Defaults to the signing certificate when it is self-signed. */
  trustAnchorsPem?: string;
}

/** The public half of an authority, as kept in the CA state (no key). */
export interface AuthorityCerts {
  /** First 16 hex digits of the SHA-256 of the signing certificate. */
  id: string;
  source: 'generated' | 'supplied';
  certificatePem: string;
  intermediatesPem: string[];
  trustAnchorsPem: string[];
  /** ms since the epoch. */
  createdAt: number;
}

export interface NewAuthority {
  certs: AuthorityCerts;
  /** PKCS#8 PEM. */
  privateKeyPem: string;
}

/** An authority ready to sign. */
export interface LoadedAuthority {
  certs: AuthorityCerts;
  signer: SigningKey;
  /** What follows an SVID in its chain: the signing certificate unless it is a root, then the intermediates. */
  chainPem: string[];
  /** No SVID may outlive the signing certificate or an intermediate. */
  chainNotAfter: Date;
}

/** Generated roots, and leaves, start this much in the past to absorb clock skew. */
export const BACKDATE_MS = 60_000;

const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;

export function authorityId(certDer: Uint8Array): string {
  return createHash('sha256').update(certDer).digest('hex').slice(0, 16);
}

export async function generateRoot(trustDomain: string, now: number, ttlMs: number): Promise<NewAuthority> {
  const keys = await subtle.generateKey(P256, true, ['sign', 'verify']);
  // The time and a random tag make each root's subject distinct, in logs and for path building.
  const created = new Date(now).toISOString().replace(/\.\d+Z$/, 'Z');
  const tag = randomBytes(4).toString('hex');
  const cert = await buildSelfSignedRoot({
    keys,
    signingAlgorithm: { ...P256, hash: 'SHA-256' },
    commonName: `Weft root CA ${trustDomain} ${created} ${tag}`,
    trustDomainId: trustDomainSpiffeId(trustDomain),
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + ttlMs),
  });
  const pem = cert.toString('pem') + '\n';
  return {
    certs: {
      id: authorityId(new Uint8Array(cert.rawData)),
      source: 'generated',
      certificatePem: pem,
      intermediatesPem: [],
      trustAnchorsPem: [pem],
      createdAt: now,
    },
    privateKeyPem: toPem('PRIVATE KEY', await subtle.exportKey('pkcs8', keys.privateKey)),
  };
}

/**
 * Checks supplied material: the signing certificate is a CA allowed to sign certificates and is
 * valid now; the key is allowed and belongs to it; every intermediate signed the one before it;
 * the chain ends at a self-signed trust anchor; any SPIFFE ID in it is of `trustDomain`.
 * Throws WEFT_E_CA_MATERIAL listing every problem.
 */
export function validateSuppliedCa(supplied: SuppliedCa, trustDomain: string, now: number): NewAuthority {
  const errors: FieldError[] = [];
  const report = (path: string, message: string) => errors.push({ path, message });

  const leading = readCertificates(supplied.certificatePem, 'certificatePem', report);
  const signer = leading[0];
  const intermediates = [
    ...leading.slice(1),
    ...readCertificates(supplied.intermediatesPem ?? '', 'intermediatesPem', report),
  ];
  const anchorsGiven = readCertificates(supplied.trustAnchorsPem ?? '', 'trustAnchorsPem', report);
  if (!signer && errors.length === 0) report('certificatePem', 'holds no CERTIFICATE block');

  const key = readPrivateKey(supplied.privateKeyPem, report);
  if (!signer) throw materialError(errors);

  checkSigningCert(signer.cert, signer.path, trustDomain, now, report);
  for (const c of intermediates) checkSigningCert(c.cert, c.path, trustDomain, now, report);
  if (key) {
    const policy = checkKey(key);
    if (!policy.ok) report('privateKeyPem', policy.problem);
    else if (!signer.cert.checkPrivateKey(key))
      report('privateKeyPem', "is not the key of certificatePem's signing certificate");
  }

  // A root given along with the chain (as in cert-manager's tls.crt) is a trust anchor, not an
  // intermediate: it is never sent with SVIDs, and it is the default anchor.
  const roots = intermediates.filter((c) => isSelfSigned(c.cert));
  const between = intermediates.filter((c) => !isSelfSigned(c.cert));
  const anchors = anchorsGiven.length > 0 ? anchorsGiven : isSelfSigned(signer.cert) ? [signer] : roots;
  if (anchors.length === 0)
    report('trustAnchorsPem', 'is required when the signing certificate is not self-signed (give the root)');
  for (const a of anchorsGiven) {
    if (!a.cert.ca) report(a.path, 'is not a CA certificate (basicConstraints cA is not true)');
    if (!isSelfSigned(a.cert))
      report(a.path, 'is not self-signed; a trust anchor must be a root certificate');
    const expires = new x509.X509Certificate(a.cert.raw).notAfter;
    if (expires.getTime() <= now) report(a.path, `expired at ${expires.toISOString()}`);
  }
  if (anchors.length > 0) checkChain([signer, ...between], anchors, report);

  if (errors.length > 0 || !key) throw materialError(errors);
  return {
    certs: {
      id: authorityId(signer.cert.raw),
      source: 'supplied',
      certificatePem: signer.cert.toString(),
      intermediatesPem: between.map((c) => c.cert.toString()),
      trustAnchorsPem: anchors.map((c) => c.cert.toString()),
      createdAt: now,
    },
    privateKeyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** Imports an authority's key for signing and parses its certificates. */
export async function loadAuthority(certs: AuthorityCerts, privateKeyPem: string): Promise<LoadedAuthority> {
  const key = createPrivateKey(privateKeyPem);
  const policy = checkKey(key);
  const node = new X509Certificate(certs.certificatePem);
  if (!policy.ok || !node.checkPrivateKey(key))
    throw new WeftError(
      'WEFT_E_CA_MATERIAL',
      `the stored key of CA ${certs.id} does not belong to its certificate or is not allowed; ` +
        'restore the store from a backup or start a rotation with new material',
    );
  const params = signingParams(policy);
  const der = key.export({ type: 'pkcs8', format: 'der' });
  const privateKey: webcrypto.CryptoKey = await subtle.importKey(
    'pkcs8',
    der,
    params.importAlgorithm,
    false,
    ['sign'],
  );
  const certificate = new x509.X509Certificate(certs.certificatePem);
  const intermediates = certs.intermediatesPem.map((p) => new x509.X509Certificate(p));
  const chainNotAfter = new Date(
    Math.min(certificate.notAfter.getTime(), ...intermediates.map((c) => c.notAfter.getTime())),
  );
  const signerIsRoot = certs.trustAnchorsPem.some((a) => new X509Certificate(a).raw.equals(node.raw));
  return {
    certs,
    signer: { certificate, privateKey, signingAlgorithm: params.signingAlgorithm },
    chainPem: [...(signerIsRoot ? [] : [certs.certificatePem]), ...certs.intermediatesPem],
    chainNotAfter,
  };
}

/**
 * The root that anchors an authority's chain: the signing certificate itself when it is one of
 * the trust anchors, else the anchor that issued the last certificate of the chain (the signing
 * certificate or its farthest intermediate). Supplied material was checked to have one; the
 * first anchor is the answer if none is found (a record edited by hand).
 */
export function anchorOf(certs: AuthorityCerts): string {
  const anchors = certs.trustAnchorsPem.map((pem) => ({ pem, cert: new X509Certificate(pem) }));
  const chain = [certs.certificatePem, ...certs.intermediatesPem].map((pem) => new X509Certificate(pem));
  const last = chain[chain.length - 1]!;
  const found = anchors.find((a) => a.cert.raw.equals(last.raw) || signedBy(last, a.cert));
  return (found ?? anchors[0]!).pem;
}

// ---- checks

interface PathedCert {
  path: string;
  cert: X509Certificate;
}

function readCertificates(
  text: string,
  field: string,
  report: (path: string, message: string) => void,
): PathedCert[] {
  const { blocks, problems } = readPemBlocks(text);
  for (const p of problems) report(field, p);
  const out: PathedCert[] = [];
  blocks.forEach((b, i) => {
    const path = `${field}[${i}]`;
    if (b.label !== 'CERTIFICATE') {
      report(path, `is a ${b.label} block; only CERTIFICATE blocks belong here`);
      return;
    }
    try {
      out.push({ path, cert: new X509Certificate(b.der) });
    } catch {
      report(path, 'is not a readable X.509 certificate');
    }
  });
  return out;
}

function readPrivateKey(pem: string, report: (path: string, message: string) => void): KeyObject | undefined {
  if (/ENCRYPTED/.test(pem)) {
    report(
      'privateKeyPem',
      'is encrypted; supply it decrypted (e.g. `openssl pkey -in key.pem -out plain.pem`)',
    );
    return undefined;
  }
  try {
    return createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    report('privateKeyPem', 'is not a readable PEM private key (PKCS#8, SEC1 or PKCS#1)');
    return undefined;
  }
}

function checkSigningCert(
  cert: X509Certificate,
  path: string,
  trustDomain: string,
  now: number,
  report: (path: string, message: string) => void,
): void {
  if (!cert.ca) report(path, 'is not a CA certificate (basicConstraints cA is not true)');
  const parsed = new x509.X509Certificate(cert.raw);
  const usage = parsed.getExtension(x509.KeyUsagesExtension);
  if (usage && (usage.usages & x509.KeyUsageFlags.keyCertSign) === 0)
    report(path, 'may not sign certificates (keyUsage lacks keyCertSign)');
  if (parsed.notBefore.getTime() > now) report(path, `is not valid before ${parsed.notBefore.toISOString()}`);
  if (parsed.notAfter.getTime() <= now) report(path, `expired at ${parsed.notAfter.toISOString()}`);
  for (const uri of uriSans(cert)) {
    const id = parseSpiffeId(uri);
    if (id.ok && id.id.trustDomain !== trustDomain)
      report(path, `names trust domain "${id.id.trustDomain}" (${uri}), but this CA serves "${trustDomain}"`);
  }
}

/** Each certificate must be issued and signed by the next; the last by one of the anchors. */
function checkChain(
  chain: PathedCert[],
  anchors: PathedCert[],
  report: (path: string, message: string) => void,
): void {
  for (let i = 0; i + 1 < chain.length; i++) {
    const child = chain[i]!;
    const parent = chain[i + 1]!;
    if (!signedBy(child.cert, parent.cert)) {
      report(
        parent.path,
        `did not issue ${child.path}; list intermediates nearest to the signing certificate first`,
      );
      return;
    }
  }
  const last = chain[chain.length - 1]!;
  if (anchors.some((a) => a.cert.raw.equals(last.cert.raw) || signedBy(last.cert, a.cert))) return;
  report(
    'trustAnchorsPem',
    `no trust anchor issued ${last.path}; give the root that ${last.path === 'certificatePem[0]' ? 'the signing certificate' : 'the last intermediate'} chains to`,
  );
}

function signedBy(child: X509Certificate, parent: X509Certificate): boolean {
  try {
    return child.checkIssued(parent) && child.verify(parent.publicKey);
  } catch {
    return false;
  }
}

function isSelfSigned(cert: X509Certificate): boolean {
  return signedBy(cert, cert);
}

function materialError(errors: FieldError[]): WeftError {
  const lines = errors.map((e) => `${e.path}: ${e.message}`);
  return new WeftError(
    'WEFT_E_CA_MATERIAL',
    `the supplied CA material cannot be used:\n  ${lines.join('\n  ')}`,
    errors,
  );
}
