// The workload side of issuance with node:crypto alone: an ECDSA P-256 key and a PKCS#10
// certification request (RFC 2986) for one SPIFFE ID. The sidecar uses this rather than the
// X.509 library the CA uses: that library and its ASN.1 schemas would cost every sidecar several
// MiB of memory for one small, fixed structure. What it builds is exactly what workload-key.ts
// builds (empty subject, the SPIFFE ID as the only subjectAltName, a critical URI; signed with
// ECDSA SHA-256), and tests check the CA and `openssl req -verify` accept it.

import { createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';

/** DER: a tag, a definite length, the content. */
function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, content]);
}

const seq = (...parts: Buffer[]): Buffer => tlv(0x30, Buffer.concat(parts));
const set = (...parts: Buffer[]): Buffer => tlv(0x31, Buffer.concat(parts));
const oid = (hex: string): Buffer => tlv(0x06, Buffer.from(hex, 'hex'));

const OID_EXTENSION_REQUEST = oid('2a864886f70d01090e'); // 1.2.840.113549.1.9.14
const OID_SUBJECT_ALT_NAME = oid('551d11'); // 2.5.29.17
const OID_ECDSA_WITH_SHA256 = oid('2a8648ce3d040302'); // 1.2.840.10045.4.3.2
const INTEGER_ZERO = tlv(0x02, Buffer.from([0]));
const TRUE = tlv(0x01, Buffer.from([0xff]));
const EMPTY_NAME = seq();

export interface WorkloadKeyPair {
  privateKey: KeyObject;
  /** PKCS#8 PEM, for node:tls (`key`). Kept in this process; never sent anywhere. */
  privateKeyPem: string;
}

/** A fresh ECDSA P-256 key pair. */
export function newWorkloadKey(): WorkloadKeyPair {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { privateKey, privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/** A PKCS#10 request (PEM) for `spiffeId` as its only subjectAltName, signed by `key`. */
export function workloadCsr(key: WorkloadKeyPair, spiffeId: string): string {
  const uri = tlv(0x86, Buffer.from(spiffeId, 'ascii')); // GeneralName uniformResourceIdentifier [6]
  const san = seq(OID_SUBJECT_ALT_NAME, TRUE, tlv(0x04, seq(uri)));
  const attributes = tlv(0xa0, seq(OID_EXTENSION_REQUEST, set(seq(san))));
  const spki = createPublicKey(key.privateKey).export({ type: 'spki', format: 'der' });
  const info = seq(INTEGER_ZERO, EMPTY_NAME, spki, attributes);
  const signature = sign('sha256', info, key.privateKey); // DER Ecdsa-Sig-Value
  const der = seq(info, seq(OID_ECDSA_WITH_SHA256), tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE REQUEST-----\n`;
}
