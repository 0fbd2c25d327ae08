// The CA pin join tokens carry: how a token splits into secret and pin, what a pin is computed
// from (the root's SubjectPublicKeyInfo, checked against the bytes in the certificate as an
// independent X.509 parser reads them), and which root the CA pins: its generated root, the root
// of a supplied intermediate even when other roots are trusted too, the new root from the start
// of a rotation, whose overlap bundle holds both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  bundlePins,
  CertificateAuthority,
  caPinOf,
  isCaPin,
  isTokenSecret,
  pinnedToken,
  splitJoinToken,
} from '../../../src/ca/index.js';
import { x509 } from '../../../src/ca/x509-lib.js';
import { MemoryStore } from '../../../src/store/index.js';
import { makeTestCa, manualClock, TRUST_DOMAIN } from './ca-fixtures.js';

const SECRET = `weft-jt-${'A'.repeat(43)}`;
const PIN = `sha256-${'b'.repeat(43)}`;

/** The pin from the SPKI bytes exactly as they sit in the certificate (not re-encoded by node:crypto). */
function pinFromCertificateBytes(pem: string): string {
  const spki = Buffer.from(new x509.X509Certificate(pem).publicKey.rawData);
  return 'sha256-' + createHash('sha256').update(spki).digest('base64url');
}

test('a token splits at its first "." into the secret and the pin', () => {
  assert.deepEqual(splitJoinToken(pinnedToken(SECRET, PIN)), { secret: SECRET, pin: PIN });
  assert.deepEqual(splitJoinToken(SECRET), { secret: SECRET, pin: undefined });
  assert.deepEqual(splitJoinToken(`${SECRET}.`), { secret: SECRET, pin: '' });
  assert.deepEqual(splitJoinToken(`${SECRET}.a.b`), { secret: SECRET, pin: 'a.b' });
  assert.equal(pinnedToken(SECRET, PIN).length, 8 + 43 + 1 + 7 + 43);
  // Every character is one a bearer token (RFC 6750 b64token) may hold: no quoting anywhere.
  assert.match(pinnedToken(SECRET, PIN), /^[A-Za-z0-9._~+/-]+$/);
  assert.ok(isTokenSecret(SECRET));
  for (const bad of ['', 'weft-jt-', `weft-jt-${'A'.repeat(42)}`, `${SECRET}A`, `weft-jt-${'A'.repeat(42)}=`])
    assert.equal(isTokenSecret(bad), false, bad);
  assert.ok(isCaPin(PIN));
  for (const bad of [
    '',
    'sha256-',
    `sha256:${'b'.repeat(43)}`,
    `sha384-${'b'.repeat(43)}`,
    `sha256-${'b'.repeat(44)}`,
  ])
    assert.equal(isCaPin(bad), false, bad);
});

test("a pin is sha256- and base64url of the SHA-256 of the root's DER SubjectPublicKeyInfo", async () => {
  const root = await makeTestCa({ name: 'Pin Root' });
  const pin = caPinOf(root.certificatePem);
  assert.match(pin, /^sha256-[A-Za-z0-9_-]{43}$/);
  assert.equal(pin, pinFromCertificateBytes(root.certificatePem));
  // A root re-issued with the same key keeps its pin; another key does not.
  const other = await makeTestCa({ name: 'Other Root' });
  assert.notEqual(caPinOf(other.certificatePem), pin);
});

test('bundlePins: each certificate of a bundle with its pin; other blocks and text are skipped', async () => {
  const a = await makeTestCa({ name: 'A' });
  const b = await makeTestCa({ name: 'B' });
  const bundle = `roots\n${a.certificatePem}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n${b.certificatePem}`;
  assert.deepEqual(
    bundlePins(bundle).map((r) => r.pin),
    [caPinOf(a.certificatePem), caPinOf(b.certificatePem)],
  );
  assert.deepEqual(bundlePins(''), []);
  assert.deepEqual(bundlePins('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), []);
});

test("the CA pins its generated root; from a rotation's activation the new root, both in the bundle meanwhile", async () => {
  const clock = manualClock();
  const ca = await CertificateAuthority.open({
    store: new MemoryStore(),
    trustDomain: TRUST_DOMAIN,
    now: clock.now,
  });
  const [oldRoot] = await ca.trustBundle();
  const oldPin = await ca.caPin();
  assert.equal(oldPin, pinFromCertificateBytes(oldRoot!));

  await ca.startRotation({ prepareMs: 1000 });
  // Prepared: the control plane's certificate still chains to the old root, so tokens pin it.
  assert.equal(await ca.caPin(), oldPin);
  const [, prepared] = bundlePins((await ca.trustBundle()).join('')).map((r) => r.pin);
  clock.advance(1000);
  const newPin = await ca.caPin();
  assert.equal(newPin, prepared);
  assert.notEqual(newPin, oldPin);
  const overlap = bundlePins((await ca.trustBundle()).join('')).map((r) => r.pin);
  // A token pinned to either root finds it in the bundle while both are trusted.
  assert.deepEqual(overlap, [newPin, oldPin]);

  await ca.finishRotation();
  assert.deepEqual(
    bundlePins((await ca.trustBundle()).join('')).map((r) => r.pin),
    [newPin],
  );
  assert.equal(await ca.caPin(), newPin);
});

test('a supplied intermediate: the pin is of the root that issued it, not of another trusted root', async () => {
  const root = await makeTestCa({ name: 'Corp Root' });
  const unrelated = await makeTestCa({ name: 'Unrelated Root' });
  const intermediate = await makeTestCa({ name: 'Mesh Intermediate', issuer: root });
  const issuing = await makeTestCa({ name: 'Issuing CA', issuer: intermediate });
  const ca = await CertificateAuthority.open({
    store: new MemoryStore(),
    trustDomain: TRUST_DOMAIN,
    supplied: {
      certificatePem: issuing.certificatePem,
      privateKeyPem: issuing.privateKeyPem,
      intermediatesPem: intermediate.certificatePem,
      trustAnchorsPem: unrelated.certificatePem + root.certificatePem,
    },
  });
  assert.equal(await ca.caPin(), caPinOf(root.certificatePem));
  // A supplied root signs directly: it is its own anchor.
  const direct = await CertificateAuthority.open({
    store: new MemoryStore(),
    trustDomain: TRUST_DOMAIN,
    supplied: { certificatePem: root.certificatePem, privateKeyPem: root.privateKeyPem },
  });
  assert.equal(await direct.caPin(), caPinOf(root.certificatePem));
});
