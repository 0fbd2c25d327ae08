// Reading a PKCS#10 certificate signing request from an untrusted workload. The CA takes only the
// public key from a CSR; the names in the issued SVID come from what the caller is entitled to.
// Every way a CSR can be unacceptable ends in a WeftError with one of five stable codes, checked
// in this order: size, encoding, key, signature, identity.
import { WeftError, type WeftErrorCode } from '../errors.js';
import { checkSpki, type KeyCheck } from './key-policy.js';
import { looksLikePem, readPemBlocks } from './pem.js';
import { x509 } from './x509-lib.js';

/** A P-256 CSR is about 400 bytes and an RSA-8192 one about 2.5 KiB; 16 KiB is ample. */
export const CSR_MAX_BYTES = 16 * 1024;

export const CSR_REFUSAL_REASONS = [
  'too_large',
  'malformed',
  'key_not_allowed',
  'bad_signature',
  'wrong_identity',
] as const;
export type CsrRefusalReason = (typeof CSR_REFUSAL_REASONS)[number];

export const CSR_REFUSAL_CODES: Record<CsrRefusalReason, WeftErrorCode> = {
  too_large: 'WEFT_E_CSR_TOO_LARGE',
  malformed: 'WEFT_E_CSR_MALFORMED',
  key_not_allowed: 'WEFT_E_CSR_KEY_NOT_ALLOWED',
  bad_signature: 'WEFT_E_CSR_BAD_SIGNATURE',
  wrong_identity: 'WEFT_E_CSR_WRONG_IDENTITY',
};

/** The refusal reason of a CSR error, or undefined for any other error. */
export function csrRefusalReason(err: unknown): CsrRefusalReason | undefined {
  if (!(err instanceof WeftError)) return undefined;
  return CSR_REFUSAL_REASONS.find((r) => CSR_REFUSAL_CODES[r] === err.code);
}

function refuse(reason: CsrRefusalReason, message: string): WeftError {
  return new WeftError(CSR_REFUSAL_CODES[reason], message);
}

const PEM_LABELS = ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'];
const EXPECTED_FORM =
  'send one PKCS#10 request as PEM ("-----BEGIN CERTIFICATE REQUEST-----") or as DER bytes';

// Signature algorithms (as WebCrypto names them) and the key kind each needs. SHA-1 and RSA-PSS
// are not accepted.
const SIGNATURE_SCHEMES: Record<string, 'ec' | 'rsa'> = { ECDSA: 'ec', 'RSASSA-PKCS1-v1_5': 'rsa' };
const SIGNATURE_HASHES = ['SHA-256', 'SHA-384', 'SHA-512'];
const ALLOWED_SIGNATURES = 'ECDSA or RSA PKCS#1 v1.5 with SHA-256, SHA-384 or SHA-512';

// Bounds for the ASN.1 reader on hostile input (the size cap already bounds the total).
const BER_LIMITS = { maxDepth: 32, maxNodes: 4096 };

export interface ParsedCsr {
  /** The request's DER encoding. */
  der: Buffer;
  publicKey: x509.PublicKey;
  /** e.g. "EC P-256". */
  keyDescription: string;
  /** URI names requested in the subjectAltName extension. */
  uris: string[];
  /** Every other requested subjectAltName, as "type:value". */
  otherNames: string[];
}

/**
 * Decodes and checks a CSR: size, encoding, key policy and self-signature. Throws a WeftError
 * with a WEFT_E_CSR_* code; never anything else.
 */
export async function parseCsr(input: string | Uint8Array): Promise<ParsedCsr> {
  // Callers may hand over unchecked JSON; anything but text or bytes is not a CSR.
  if (typeof input !== 'string' && !(input instanceof Uint8Array))
    throw refuse('malformed', `the CSR is ${input === null ? 'null' : typeof input}; ${EXPECTED_FORM}`);
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  if (size > CSR_MAX_BYTES)
    throw refuse('too_large', `the CSR is ${size} bytes; at most ${CSR_MAX_BYTES} bytes are accepted`);
  const der = decode(input);
  checkOuterLength(der);

  let csr: x509.Pkcs10CertificateRequest;
  let spki: Uint8Array;
  let signature: { scheme: string; hash: string };
  let names: { type: string; value: string }[];
  try {
    csr = new x509.Pkcs10CertificateRequest(der, { berOptions: BER_LIMITS });
    spki = new Uint8Array(csr.publicKey.rawData);
    signature = signatureOf(csr);
    names = requestedNames(csr);
  } catch (err) {
    throw refuse('malformed', `the CSR is not a valid PKCS#10 request (${describe(err)}); ${EXPECTED_FORM}`);
  }

  const key: KeyCheck = checkSpki(spki);
  if (!key.ok) throw refuse('key_not_allowed', `the CSR's key is not accepted: ${key.problem}`);

  if (SIGNATURE_SCHEMES[signature.scheme] !== key.kind || !SIGNATURE_HASHES.includes(signature.hash)) {
    const alg = signature.hash
      ? `${signature.scheme} with ${signature.hash}`
      : `algorithm ${signature.scheme}`;
    const got = `${alg} and an ${key.description} key`;
    throw refuse(
      'bad_signature',
      `the CSR is signed with ${got}; accepted: ${ALLOWED_SIGNATURES}, matching the key`,
    );
  }
  let valid = false;
  try {
    valid = await csr.verify();
  } catch {
    valid = false;
  }
  if (!valid)
    throw refuse(
      'bad_signature',
      "the CSR's self-signature does not verify with its own public key: it was altered, or signed " +
        'with a different key than the one it carries; sign it with the private key of the public key it contains',
    );

  return {
    der,
    publicKey: csr.publicKey,
    keyDescription: key.description,
    uris: names.filter((n) => n.type === 'url').map((n) => n.value),
    otherNames: names.filter((n) => n.type !== 'url').map((n) => `${n.type}:${n.value}`),
  };
}

/**
 * Refuses a CSR that asks for anything but exactly `spiffeId` as its one subjectAltName. The
 * issued certificate would carry `spiffeId` regardless; refusing makes a confused or hostile
 * caller visible instead of silently handing it an identity it did not ask for.
 */
export function checkCsrIdentity(csr: ParsedCsr, spiffeId: string): void {
  const asked = [...csr.uris.map((u) => `URI:${u}`), ...csr.otherNames];
  if (csr.uris.length === 1 && csr.uris[0] === spiffeId && csr.otherNames.length === 0) return;
  const listed = asked.map((a) => JSON.stringify(a)).join(', ');
  // The names are the caller's text: quoted, and cut short so a message stays a message.
  const what =
    asked.length === 0 ? 'no subjectAltName' : listed.length > 300 ? `${listed.slice(0, 300)}…` : listed;
  throw refuse(
    'wrong_identity',
    `the CSR asks for ${what}, but the caller is entitled only to ${spiffeId}; ` +
      'the CSR must carry exactly that SPIFFE ID as its one URI subjectAltName and no other names',
  );
}

function decode(input: string | Uint8Array): Buffer {
  const bytes = typeof input === 'string' ? undefined : Buffer.from(input);
  if (bytes && bytes[0] === 0x30) return bytes;
  const text = typeof input === 'string' ? input : bytes!.toString('latin1');
  if (text.trim() === '') throw refuse('malformed', `the CSR is empty; ${EXPECTED_FORM}`);
  if (!looksLikePem(text))
    throw refuse(
      'malformed',
      `the CSR is neither PEM nor DER (a DER request starts with byte 0x30); ${EXPECTED_FORM}`,
    );
  const { blocks, problems } = readPemBlocks(text);
  if (problems.length > 0) throw refuse('malformed', `the CSR's PEM is damaged: ${problems.join('; ')}`);
  if (blocks.some((b) => b.label.includes('PRIVATE KEY')))
    throw refuse(
      'malformed',
      'the CSR text contains a private key; a private key must never leave the workload: send only the CERTIFICATE REQUEST block',
    );
  const requests = blocks.filter((b) => PEM_LABELS.includes(b.label));
  const others = blocks.filter((b) => !PEM_LABELS.includes(b.label)).map((b) => b.label);
  if (requests.length !== 1 || others.length > 0) {
    const found = blocks.length === 0 ? 'no complete PEM block' : blocks.map((b) => b.label).join(', ');
    throw refuse('malformed', `the CSR PEM must hold exactly one CERTIFICATE REQUEST block; found ${found}`);
  }
  return requests[0]!.der;
}

/** A DER SEQUENCE whose length covers the input exactly: no trailing or missing bytes. */
function checkOuterLength(der: Buffer): void {
  const fail = (why: string) =>
    refuse('malformed', `the CSR's DER encoding is invalid: ${why}; ${EXPECTED_FORM}`);
  if (der.length < 2 || der[0] !== 0x30) throw fail('it does not start with a SEQUENCE');
  const first = der[1]!;
  let length = first;
  let header = 2;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 3) throw fail('the outer length is indefinite or too long');
    if (der.length < 2 + n) throw fail('it ends inside the outer length');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + der[2 + i]!;
    header = 2 + n;
  }
  if (header + length !== der.length)
    throw fail(`the outer SEQUENCE declares ${header + length} bytes but ${der.length} were sent`);
}

/** The subjectAltNames asked for in the CSR's extensionRequest attribute(s). */
function requestedNames(csr: x509.Pkcs10CertificateRequest): { type: string; value: string }[] {
  const names: { type: string; value: string }[] = [];
  for (const ext of csr.extensions) {
    if (ext.type !== SAN_OID) continue;
    const san =
      ext instanceof x509.SubjectAlternativeNameExtension
        ? ext
        : new x509.SubjectAlternativeNameExtension(ext.rawData);
    for (const n of san.names.toJSON()) names.push({ type: n.type, value: n.value });
  }
  return names;
}

const SAN_OID = '2.5.29.17';

/** The signature scheme and hash; an algorithm the library does not know shows as its OID. */
function signatureOf(csr: x509.Pkcs10CertificateRequest): { scheme: string; hash: string } {
  const alg = csr.signatureAlgorithm as { name: string; hash?: { name?: string } };
  return { scheme: String(alg.name), hash: String(alg.hash?.name ?? '') };
}

function describe(err: unknown): string {
  const msg = err instanceof Error && typeof err.message === 'string' ? err.message : 'unreadable';
  return msg.length > 200 ? `${msg.slice(0, 200)}…` : msg || 'unreadable';
}
