// Shared makers for the CA tests: CSRs with any key and any names (including ones the CA must
// refuse), and a manual clock. Honest CSRs come from the sidecar's own createCsr().
import { webcrypto } from 'node:crypto';
import { x509 } from '../../../src/ca/x509-lib.js';

export const TRUST_DOMAIN = 'example.org';
export const WEB = { namespace: 'default', serviceAccount: 'web' };
export const WEB_ID = `spiffe://${TRUST_DOMAIN}/ns/default/sa/web`;

export type KeySpec = 'P-256' | 'P-384' | 'P-521' | 'RSA-1024' | 'RSA-2048';

function algorithms(spec: KeySpec) {
  if (spec.startsWith('RSA-')) {
    const alg = {
      name: 'RSASSA-PKCS1-v1_5',
      modulusLength: Number(spec.slice(4)),
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: 'SHA-256',
    };
    return { gen: alg, sign: alg };
  }
  const hash = spec === 'P-256' ? 'SHA-256' : spec === 'P-384' ? 'SHA-384' : 'SHA-512';
  return { gen: { name: 'ECDSA', namedCurve: spec }, sign: { name: 'ECDSA', namedCurve: spec, hash } };
}

const keyCache = new Map<KeySpec, webcrypto.CryptoKeyPair>();

/** A key pair per spec, generated once per test process (RSA generation is slow). */
export async function keyPair(spec: KeySpec): Promise<webcrypto.CryptoKeyPair> {
  let keys = keyCache.get(spec);
  if (!keys) {
    keys = (await webcrypto.subtle.generateKey(algorithms(spec).gen, true, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    keyCache.set(spec, keys);
  }
  return keys;
}

/** A CSR with `names` as subjectAltNames (or none), signed by a key of `spec`; PEM. */
export async function makeCsr(
  names: { type: 'url' | 'dns'; value: string }[],
  spec: KeySpec = 'P-256',
): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys: (await keyPair(spec)) as Parameters<
      typeof x509.Pkcs10CertificateRequestGenerator.create
    >[0]['keys'],
    signingAlgorithm: algorithms(spec).sign,
    extensions: names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names, true)] : [],
  });
  return csr.toString('pem');
}

export function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

/** A clock the test moves by hand. */
export function manualClock(start = Date.now()): { now: () => number; advance(ms: number): void } {
  let t = start;
  return {
    now: () => t,
    advance(ms) {
      t += ms;
    },
  };
}

export interface TestCa {
  certificatePem: string;
  privateKeyPem: string;
  keys: webcrypto.CryptoKeyPair;
  cert: x509.X509Certificate;
}

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

/**
 * A CA certificate like an operator's PKI would hand over: a self-signed root, or (with
 * `issuer`) an intermediate signed by it. `ca: false` makes a certificate that must be refused.
 */
export async function makeTestCa(
  opts: { name: string; issuer?: TestCa; ca?: boolean; notAfter?: Date; spiffeId?: string } = {
    name: 'Test Root',
  },
): Promise<TestCa> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const ski = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never);
  const issuerSki = opts.issuer?.cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId ?? ski.keyId;
  const subject = `O=Test PKI, CN=${opts.name}`;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber:
      '01' +
      webcrypto.getRandomValues(new Uint8Array(8)).reduce((s, b) => s + b.toString(16).padStart(2, '0'), ''),
    subject,
    issuer: opts.issuer ? opts.issuer.cert.subjectName : subject,
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: opts.notAfter ?? new Date(Date.now() + 30 * 24 * 3600_000),
    publicKey: keys.publicKey as never,
    signingKey: (opts.issuer?.keys ?? keys).privateKey as never,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(opts.ca ?? true, undefined, true),
      new x509.KeyUsagesExtension(
        (opts.ca ?? true)
          ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign
          : x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      ski,
      new x509.AuthorityKeyIdentifierExtension(issuerSki),
      ...(opts.spiffeId
        ? [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: opts.spiffeId }])]
        : []),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const b64 = Buffer.from(pkcs8)
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n');
  return {
    certificatePem: cert.toString('pem') + '\n',
    privateKeyPem: `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`,
    keys,
    cert,
  };
}
