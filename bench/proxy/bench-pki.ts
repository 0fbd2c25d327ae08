// The certificates of the nginx and HAProxy mTLS hops, made at run time and deleted with the
// bench's temp dirs (nothing is committed): one bench root, and per role an ECDSA P-256 leaf
// signed directly by it, as Weft's CA signs its SVIDs. A leaf is shaped like an X.509-SVID
// (empty subject, a SPIFFE ID as URI name, serverAuth + clientAuth) with a DNS name added,
// because nginx's `proxy_ssl_verify` and HAProxy's `verify required` check a host name and
// cannot match a URI. Also a second, unrelated root with one leaf: the certificate the inbound
// hops must refuse.

import type { webcrypto } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSelfSignedRoot, randomSerial } from '../../src/ca/svid.js';
import { toPem } from '../../src/ca/pem.js';
import { subtle, x509 } from '../../src/ca/x509-lib.js';

/**
 * What Weft's sidecars negotiate with each other: Node's (OpenSSL 3) defaults, where the client
 * lists TLS_AES_256_GCM_SHA384 first and sends its key share for X25519 only, and the server
 * takes both. The nginx and HAProxy hops are pinned to exactly these.
 */
export const TLS_SUITE = 'TLS_AES_256_GCM_SHA384';
export const TLS_GROUP = 'X25519';

export const TRUST_DOMAIN = 'proxy-bench.test';
/** The DNS name of the inbound hop's certificate, which the outbound hop checks. */
export const INBOUND_NAME = `inbound.${TRUST_DOMAIN}`;

export type Role = 'inbound' | 'outbound' | 'client';

/** PEM credentials for node:tls (`ca`, `cert`, `key`). */
export interface Credentials {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/** Files for nginx (`.crt`, `.key`) and HAProxy (`.pem`: certificate and key in one). */
export interface RoleFiles {
  cert: string;
  key: string;
  combined: string;
}

export interface BenchPki {
  caFile: string;
  files: Record<Role, RoleFiles>;
  credentials: Record<Role, Credentials>;
  /** A client certificate and key under another root, for the refusal check. */
  stranger: Omit<Credentials, 'caPem'>;
  spiffeId(role: Role): string;
}

const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY = 24 * 3600 * 1000;

interface Signer {
  certificate: x509.X509Certificate;
  privateKey: webcrypto.CryptoKey;
}

async function newKeys(): Promise<webcrypto.CryptoKeyPair> {
  return subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']);
}

async function newRoot(commonName: string): Promise<Signer> {
  const keys = await newKeys();
  const now = Date.now();
  const certificate = await buildSelfSignedRoot({
    keys,
    signingAlgorithm: SIGNING,
    commonName,
    trustDomainId: `spiffe://${TRUST_DOMAIN}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + DAY),
  });
  return { certificate, privateKey: keys.privateKey };
}

async function newLeaf(signer: Signer, spiffeId: string, dnsName: string): Promise<Credentials> {
  const keys = await newKeys();
  const now = Date.now();
  const ski = signer.certificate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: '',
    issuer: signer.certificate.subjectName,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + DAY),
    publicKey: keys.publicKey,
    signingKey: signer.privateKey,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension(
        [
          { type: 'url', value: spiffeId },
          { type: 'dns', value: dnsName },
        ],
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ...(ski ? [new x509.AuthorityKeyIdentifierExtension(ski)] : []),
    ],
  });
  return {
    caPem: signer.certificate.toString('pem') + '\n',
    certPem: cert.toString('pem') + '\n',
    keyPem: toPem('PRIVATE KEY', await subtle.exportKey('pkcs8', keys.privateKey)),
  };
}

/**
 * Writes a bench root and the three leaves into `dir`. Certificates are world-readable, keys
 * only by their owner: nginx and HAProxy read both when they load their config, before an
 * nginx started as root hands its connections to an unprivileged worker, which reads no file.
 */
export async function createBenchPki(dir: string): Promise<BenchPki> {
  const root = await newRoot('proxy bench CA');
  const spiffeId = (role: Role): string => `spiffe://${TRUST_DOMAIN}/ns/default/sa/${role}`;
  const write = (name: string, text: string, mode: number): string => {
    const file = join(dir, name);
    writeFileSync(file, text, { mode });
    chmodSync(file, mode); // the umask may have narrowed it
    return file;
  };
  const caFile = write('ca.pem', root.certificate.toString('pem') + '\n', 0o644);
  const credentials = {} as Record<Role, Credentials>;
  const files = {} as Record<Role, RoleFiles>;
  for (const role of ['inbound', 'outbound', 'client'] as const) {
    const c = await newLeaf(root, spiffeId(role), `${role}.${TRUST_DOMAIN}`);
    credentials[role] = c;
    files[role] = {
      cert: write(`${role}.crt`, c.certPem, 0o644),
      key: write(`${role}.key`, c.keyPem, 0o600),
      combined: write(`${role}.pem`, c.certPem + c.keyPem, 0o600),
    };
  }
  const other = await newRoot('unrelated CA');
  const { certPem, keyPem } = await newLeaf(other, spiffeId('client'), `client.${TRUST_DOMAIN}`);
  return { caFile, files, credentials, stranger: { certPem, keyPem }, spiffeId };
}
