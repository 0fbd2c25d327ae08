// What a sidecar trusts for its first call, from its join token's CA pin, the (plain HTTP)
// /api/v1/info bundle and a bundle given with --trust-bundle: the pinned root only, never a root
// appended beside it; the given bundle whole, held to the pin; the info bundle on first use only
// for a token without a pin. Roots are real certificates from real CAs.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { caPinOf } from '../../../src/ca/ca-pin.js';
import { isWeftError } from '../../../src/errors.js';
import { bootstrapTrust } from '../../../src/sidecar/bootstrap-trust.js';
import { makeTestCa, type TestCa } from '../ca/ca-fixtures.js';

const SECRET = `weft-jt-${'A'.repeat(43)}`;
const who = { serviceAccount: 'web', namespace: 'shop' };
let mesh: TestCa;
let next: TestCa;
let attacker: TestCa;

before(async () => {
  mesh = await makeTestCa({ name: 'Mesh Root' });
  next = await makeTestCa({ name: 'Mesh Root 2' });
  attacker = await makeTestCa({ name: 'Attacker Root' });
});

function refusal(f: () => unknown): string {
  let message = '';
  assert.throws(f, (e: unknown) => {
    assert.ok(isWeftError(e, 'WEFT_E_CA_PIN_MISMATCH'), String(e));
    message = e.message;
    return true;
  });
  return message;
}

test('a pin that matches a root of the bundle: only the pinned root is trusted', () => {
  const pin = caPinOf(mesh.certificatePem);
  const trust = bootstrapTrust({ token: `${SECRET}.${pin}`, infoBundle: mesh.certificatePem, ...who });
  assert.equal(trust.basis, 'pinned');
  assert.equal(trust.pin, pin);
  assert.equal(trust.pem.trim(), mesh.certificatePem.trim());
  // Anyone can put the right root beside their own: theirs is dropped.
  for (const infoBundle of [
    mesh.certificatePem + attacker.certificatePem,
    attacker.certificatePem + mesh.certificatePem,
  ]) {
    const t = bootstrapTrust({ token: `${SECRET}.${pin}`, infoBundle, ...who });
    assert.equal(t.pem.trim(), mesh.certificatePem.trim());
    assert.ok(!t.pem.includes(attacker.certificatePem.split('\n')[3]!));
  }
});

test('during a rotation overlap the bundle holds both roots: a token pinned to either matches', () => {
  const overlap = next.certificatePem + mesh.certificatePem;
  for (const root of [mesh, next]) {
    const trust = bootstrapTrust({
      token: `${SECRET}.${caPinOf(root.certificatePem)}`,
      infoBundle: overlap,
      ...who,
    });
    assert.equal(trust.pem.trim(), root.certificatePem.trim());
  }
});

test('a bundle without the pinned root is refused, naming a rotation and an impersonator as causes', () => {
  const pin = caPinOf(mesh.certificatePem);
  const message = refusal(() =>
    bootstrapTrust({ token: `${SECRET}.${pin}`, infoBundle: attacker.certificatePem, ...who }),
  );
  assert.match(message, /does not match the join token's CA pin/);
  assert.ok(message.includes(pin), message);
  assert.ok(message.includes(caPinOf(attacker.certificatePem)), 'names the roots it has');
  assert.match(
    message,
    /rotated since the token was made: make a new one with `weft token create --service-account web -n shop`/,
  );
  assert.match(message, /impersonating the control plane/);
  assert.ok(!message.includes(SECRET), 'the secret is not in the message');
});

test('a pin that cannot be read, or a bundle without certificates, is refused', () => {
  for (const pin of ['', 'garbage', `sha256:${'a'.repeat(43)}`, `sha256-${'a'.repeat(20)}`]) {
    const message = refusal(() =>
      bootstrapTrust({ token: `${SECRET}.${pin}`, infoBundle: mesh.certificatePem, ...who }),
    );
    assert.match(message, /not one this sidecar can check .*cut short or altered/);
  }
  const pin = caPinOf(mesh.certificatePem);
  for (const infoBundle of ['', 'nonsense', undefined as unknown as string])
    assert.match(
      refusal(() => bootstrapTrust({ token: `${SECRET}.${pin}`, infoBundle, ...who })),
      /holds no certificate/,
    );
});

test('a token without a pin takes the bundle on first use', () => {
  const bundle = mesh.certificatePem + attacker.certificatePem;
  const trust = bootstrapTrust({ token: SECRET, infoBundle: bundle, ...who });
  assert.deepEqual(trust, {
    pem: bundle,
    source: 'the trust bundle the control plane sent in /api/v1/info',
    pin: undefined,
    basis: 'first-use',
  });
});

test('a given bundle replaces the info bundle, is trusted whole, and is still held to the pin', () => {
  const given = { pem: next.certificatePem + mesh.certificatePem, source: '--trust-bundle roots.pem' };
  const pinned = bootstrapTrust({
    token: `${SECRET}.${caPinOf(mesh.certificatePem)}`,
    infoBundle: attacker.certificatePem,
    given,
    ...who,
  });
  assert.deepEqual(pinned, {
    pem: given.pem,
    source: given.source,
    pin: caPinOf(mesh.certificatePem),
    basis: 'given',
  });
  const pinless = bootstrapTrust({ token: SECRET, infoBundle: attacker.certificatePem, given, ...who });
  assert.equal(pinless.basis, 'given');
  assert.equal(pinless.pem, given.pem);
  const message = refusal(() =>
    bootstrapTrust({
      token: `${SECRET}.${caPinOf(attacker.certificatePem)}`,
      infoBundle: attacker.certificatePem,
      given,
      ...who,
    }),
  );
  assert.match(message, /^--trust-bundle roots\.pem does not match the join token's CA pin/);
});
