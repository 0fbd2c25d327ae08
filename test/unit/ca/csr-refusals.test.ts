// Every way the CA refuses a CSR, one test each, with its stable code and its counter; and the
// forms it accepts (PEM, DER, the allowed key kinds).
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { isWeftError } from '../../../src/errors.js';
import {
  CertificateAuthority,
  CSR_MAX_BYTES,
  createCsr,
  generateWorkloadKey,
  type CsrRefusalReason,
} from '../../../src/ca/index.js';
import { MemoryStore } from '../../../src/store/index.js';
import { x509 } from '../../../src/ca/x509-lib.js';
import { TRUST_DOMAIN, WEB, WEB_ID, makeCsr, pemToDer } from './ca-fixtures.js';

let ca: CertificateAuthority;
before(async () => {
  ca = await CertificateAuthority.open({ store: new MemoryStore(), trustDomain: TRUST_DOMAIN });
});

/** Asserts the request is refused with `code`, that only `reason`'s counter moved, and returns the message. */
async function refused(csr: string | Uint8Array, code: string, reason: CsrRefusalReason): Promise<string> {
  const before = ca.stats();
  let message = '';
  await assert.rejects(ca.sign({ csr, identity: WEB }), (e: unknown) => {
    assert.ok(isWeftError(e), `not a WeftError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    message = e.message;
    return true;
  });
  const after = ca.stats();
  assert.equal(after.refused[reason], before.refused[reason] + 1, `${reason} counter`);
  assert.equal(after.issued, before.issued);
  for (const r of Object.keys(after.refused) as CsrRefusalReason[])
    if (r !== reason) assert.equal(after.refused[r], before.refused[r], `${r} counter must not move`);
  return message;
}

test('an honest CSR from createCsr() is signed, as PEM and as DER', async () => {
  const key = await generateWorkloadKey();
  const pem = await createCsr(key, WEB_ID);
  const issuedBefore = ca.stats().issued;
  for (const csr of [pem, pemToDer(pem), new Uint8Array(pemToDer(pem))]) {
    const svid = await ca.sign({ csr, identity: WEB });
    assert.equal(svid.spiffeId, WEB_ID);
    const cert = new x509.X509Certificate(svid.certificatePem);
    assert.equal(cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON()[0]?.value, WEB_ID);
  }
  assert.equal(ca.stats().issued, issuedBefore + 3);
});

test('EC P-384 and RSA 2048 keys are accepted', async () => {
  for (const spec of ['P-384', 'RSA-2048'] as const) {
    const svid = await ca.sign({ csr: await makeCsr([{ type: 'url', value: WEB_ID }], spec), identity: WEB });
    assert.equal(svid.spiffeId, WEB_ID);
  }
});

test('an oversized CSR is refused before it is read: WEFT_E_CSR_TOO_LARGE', async () => {
  const huge = '-----BEGIN CERTIFICATE REQUEST-----\n' + 'A'.repeat(CSR_MAX_BYTES) + '\n';
  const message = await refused(huge, 'WEFT_E_CSR_TOO_LARGE', 'too_large');
  assert.match(message, /at most 16384 bytes/);
});

test('garbage is refused: WEFT_E_CSR_MALFORMED', async () => {
  const message = await refused('hello, CA', 'WEFT_E_CSR_MALFORMED', 'malformed');
  assert.match(message, /neither PEM nor DER/);
  assert.match(message, /BEGIN CERTIFICATE REQUEST/);
  // The other malformed shapes carry the same code.
  const pem = await makeCsr([{ type: 'url', value: WEB_ID }]);
  const der = pemToDer(pem);
  await refused(Buffer.concat([der, Buffer.from([0])]), 'WEFT_E_CSR_MALFORMED', 'malformed'); // trailing byte
  await refused(der.subarray(0, der.length - 5), 'WEFT_E_CSR_MALFORMED', 'malformed'); // truncated
  await refused(pem.replace(/CERTIFICATE REQUEST/g, 'CERTIFICATE'), 'WEFT_E_CSR_MALFORMED', 'malformed'); // wrong label
  await refused(pem + pem, 'WEFT_E_CSR_MALFORMED', 'malformed'); // two requests
  const withKey = `${pem}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n`;
  assert.match(await refused(withKey, 'WEFT_E_CSR_MALFORMED', 'malformed'), /must never leave the workload/);
  await refused('', 'WEFT_E_CSR_MALFORMED', 'malformed');
  for (const notText of [undefined, null, 42, { pem: 'x' }])
    await refused(notText as unknown as string, 'WEFT_E_CSR_MALFORMED', 'malformed');
});

test('a CSR whose self-signature does not verify is refused: WEFT_E_CSR_BAD_SIGNATURE', async () => {
  // Rewrite the requested name after signing (…/sa/web → …/sa/wex): the content no longer matches the signature.
  const der = pemToDer(await makeCsr([{ type: 'url', value: WEB_ID }]));
  const at = der.indexOf(Buffer.from('sa/web'));
  assert.ok(at > 0);
  const tampered = Buffer.from(der);
  tampered[at + 5] = 'x'.charCodeAt(0);
  const message = await refused(tampered, 'WEFT_E_CSR_BAD_SIGNATURE', 'bad_signature');
  assert.match(message, /self-signature does not verify/);
});

test('a weak or unsupported key is refused: WEFT_E_CSR_KEY_NOT_ALLOWED', async () => {
  const rsa1024 = await refused(
    await makeCsr([{ type: 'url', value: WEB_ID }], 'RSA-1024'),
    'WEFT_E_CSR_KEY_NOT_ALLOWED',
    'key_not_allowed',
  );
  assert.match(rsa1024, /RSA 1024 bits; allowed keys: EC P-256 or P-384, or RSA of 2048 to 8192 bits/);
  const p521 = await refused(
    await makeCsr([{ type: 'url', value: WEB_ID }], 'P-521'),
    'WEFT_E_CSR_KEY_NOT_ALLOWED',
    'key_not_allowed',
  );
  assert.match(p521, /curve secp521r1; allowed keys/);
});

test('a CSR for another identity is refused: WEFT_E_CSR_WRONG_IDENTITY', async () => {
  const other = `spiffe://${TRUST_DOMAIN}/ns/default/sa/admin`;
  const message = await refused(
    await makeCsr([{ type: 'url', value: other }]),
    'WEFT_E_CSR_WRONG_IDENTITY',
    'wrong_identity',
  );
  assert.ok(message.includes(other) && message.includes(WEB_ID), message);
  // Also: another trust domain, extra names, or no name at all.
  for (const names of [
    [{ type: 'url' as const, value: 'spiffe://evil.org/ns/default/sa/web' }],
    [
      { type: 'url' as const, value: WEB_ID },
      { type: 'dns' as const, value: 'web.default.svc' },
    ],
    [
      { type: 'url' as const, value: WEB_ID },
      { type: 'url' as const, value: other },
    ],
    [],
  ])
    await refused(await makeCsr(names), 'WEFT_E_CSR_WRONG_IDENTITY', 'wrong_identity');
});

test('a bad identity or ttl from the caller is a validation error, not a CSR refusal', async () => {
  const csr = await makeCsr([{ type: 'url', value: WEB_ID }]);
  const before = ca.stats();
  await assert.rejects(
    ca.sign({ csr, identity: { namespace: 'Bad_NS', serviceAccount: 'web' } }),
    (e: unknown) => {
      assert.ok(isWeftError(e, 'WEFT_E_VALIDATION'));
      assert.equal(e.errors[0]?.path, 'identity.namespace');
      return true;
    },
  );
  await assert.rejects(ca.sign({ csr, identity: WEB, ttlMs: 59_999 }), (e: unknown) => {
    assert.ok(isWeftError(e, 'WEFT_E_VALIDATION'));
    assert.equal(e.errors[0]?.path, 'ttlMs');
    return true;
  });
  assert.deepEqual(ca.stats(), before);
});
