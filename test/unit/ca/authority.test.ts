// The certificate authority: first start, restart, replicas racing, options, the SVID's exact
// shape, root rotation with its preparation and overlap, and bring-your-own CA material. openssl's view of the
// same certificates is in test/integration/ca-openssl.test.ts.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { isWeftError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import {
  CA_STATE_KEY,
  CertificateAuthority,
  createCsr,
  generateWorkloadKey,
  renewalTime,
  type IssuedSvid,
} from '../../../src/ca/index.js';
import { FileStore, MemoryStore, type Store } from '../../../src/store/index.js';
import { LOG_FILE } from '../../../src/store/log-format.js';
import { x509 } from '../../../src/ca/x509-lib.js';
import { TRUST_DOMAIN, WEB, WEB_ID, makeTestCa, manualClock } from './ca-fixtures.js';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await fsp.rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await fsp.mkdtemp(join(tmpdir(), 'weft-ca-'));
  dirs.push(d);
  return d;
}

async function issue(ca: CertificateAuthority, ttlMs?: number): Promise<IssuedSvid> {
  const key = await generateWorkloadKey();
  return ca.sign({ csr: await createCsr(key, WEB_ID), identity: WEB, ...(ttlMs ? { ttlMs } : {}) });
}

/** Whether `leafPem` was signed by `caPem` (Node's OpenSSL, signature and issuer name). */
function signedBy(leafPem: string, caPem: string): boolean {
  const leaf = new X509Certificate(leafPem);
  const ca = new X509Certificate(caPem);
  return leaf.checkIssued(ca) && leaf.verify(ca.publicKey);
}

function splitPem(pems: string): string[] {
  return pems.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n?/g) ?? [];
}

async function storeText(store: Store): Promise<string> {
  const { items } = await store.list('/');
  return items.map((kv) => `${kv.key}=${kv.value}`).join('\n');
}

test('first start generates an ECDSA P-256 root; a restart on the same FileStore keeps it; files are 0600', async () => {
  const dir = await tempDir();
  let store = await FileStore.open(dir, { logger: silentLogger() });
  try {
    const ca = await CertificateAuthority.open({ store, trustDomain: TRUST_DOMAIN });
    const status = await ca.status();
    assert.equal(status.active.source, 'generated');
    const [root] = await ca.trustBundle();
    const rootCert = new X509Certificate(root!);
    assert.equal(rootCert.ca, true);
    assert.equal(rootCert.publicKey.asymmetricKeyType, 'ec');
    assert.equal(rootCert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.equal(rootCert.subjectAltName, `URI:spiffe://${TRUST_DOMAIN}`);
    // The private key is in the store as PKCS#8 PEM, under /weft/ca/keys/<id>.
    const keyKv = await store.get(`/weft/ca/keys/${status.active.id}`);
    assert.match(keyKv!.value, /BEGIN PRIVATE KEY/);
    assert.doesNotMatch((await store.get(CA_STATE_KEY))!.value, /PRIVATE KEY/);
    assert.ok(signedBy((await issue(ca)).certificatePem, root!));

    await store.close();
    // The store's files hold the key: owner-only.
    assert.equal((await fsp.stat(join(dir, LOG_FILE))).mode & 0o777, 0o600);
    assert.equal((await fsp.stat(dir)).mode & 0o777, 0o700);

    store = await FileStore.open(dir, { logger: silentLogger() });
    const again = await CertificateAuthority.open({ store, trustDomain: TRUST_DOMAIN });
    assert.equal((await again.status()).active.id, status.active.id);
    assert.deepEqual(await again.trustBundle(), [root]);
    assert.ok(signedBy((await issue(again)).certificatePem, root!));
  } finally {
    await store.close();
  }
});

test('replicas opening an empty store at once agree on one root', async () => {
  const store = new MemoryStore();
  const cas = await Promise.all(
    [1, 2, 3, 4].map(() => CertificateAuthority.open({ store, trustDomain: TRUST_DOMAIN })),
  );
  const ids = new Set(await Promise.all(cas.map(async (ca) => (await ca.status()).active.id)));
  assert.equal(ids.size, 1);
  const { items } = await store.list('/weft/ca/keys/');
  assert.equal(items.length, 1);
});

test('options are validated with field paths; the trust domain cannot change in place', async () => {
  const store = new MemoryStore();
  await assert.rejects(
    CertificateAuthority.open({ store, trustDomain: 'Example.ORG', svidTtlMs: 59_000, rotationOverlapMs: 1 }),
    (e: unknown) => {
      assert.ok(isWeftError(e, 'WEFT_E_VALIDATION'));
      assert.deepEqual(e.errors.map((x) => x.path).sort(), ['svidTtlMs', 'trustDomain']);
      return true;
    },
  );
  await assert.rejects(
    CertificateAuthority.open({
      store,
      trustDomain: TRUST_DOMAIN,
      svidTtlMs: HOUR,
      rotationOverlapMs: HOUR - 1,
    }),
    (e: unknown) => isWeftError(e, 'WEFT_E_VALIDATION') && e.errors[0]?.path === 'rotationOverlapMs',
  );
  await CertificateAuthority.open({ store, trustDomain: TRUST_DOMAIN });
  await assert.rejects(CertificateAuthority.open({ store, trustDomain: 'other.org' }), (e: unknown) => {
    assert.ok(isWeftError(e, 'WEFT_E_CA_MATERIAL'));
    assert.match(e.message, /serves trust domain "example.org", but "other.org" is configured/);
    return true;
  });
});

test('the SVID has the X.509-SVID shape: one critical URI SAN, empty subject, leaf key usages, 24 h', async () => {
  const clock = manualClock();
  const ca = await CertificateAuthority.open({
    store: new MemoryStore(),
    trustDomain: TRUST_DOMAIN,
    now: clock.now,
  });
  const svid = await issue(ca);
  const cert = new x509.X509Certificate(svid.certificatePem);
  assert.equal(cert.subject, '');
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
  assert.equal(san.critical, true);
  assert.deepEqual(san.names.toJSON(), [{ type: 'url', value: WEB_ID }]);
  const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
  assert.equal(bc.ca, false);
  assert.equal(bc.critical, true);
  const ku = cert.getExtension(x509.KeyUsagesExtension)!;
  assert.equal(ku.critical, true);
  assert.equal(ku.usages, x509.KeyUsageFlags.digitalSignature);
  assert.deepEqual(
    [...cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages],
    ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'],
  );
  assert.ok(cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId);
  assert.equal(svid.notAfter.getTime(), Math.floor((clock.now() + DAY) / 1000) * 1000);
  assert.equal(svid.notBefore.getTime(), Math.floor((clock.now() - 60_000) / 1000) * 1000);
  // Renew halfway through the lifetime from issuance (the backdated minute does not count).
  const issued = svid.notBefore.getTime() + 60_000;
  const half = issued + (svid.notAfter.getTime() - issued) / 2;
  assert.equal(svid.renewAt.getTime(), Math.floor(half));
  assert.equal(renewalTime(svid.certificatePem).getTime(), svid.renewAt.getTime());
  assert.equal(svid.chainPem, svid.certificatePem);
  // A shorter lifetime on request, and a configurable default.
  const short = await issue(ca, 5 * 60_000);
  // A 1-minute SVID (the shortest allowed) is due in 30 s, not at once.
  const minute = await issue(ca, 60_000);
  assert.equal(minute.renewAt.getTime() - Math.floor(clock.now() / 1000) * 1000, 30_000);
  assert.equal(short.notAfter.getTime(), Math.floor((clock.now() + 5 * 60_000) / 1000) * 1000);
  const hourly = await CertificateAuthority.open({
    store: new MemoryStore(),
    trustDomain: TRUST_DOMAIN,
    svidTtlMs: HOUR,
    now: clock.now,
  });
  assert.equal((await issue(hourly)).notAfter.getTime(), Math.floor((clock.now() + HOUR) / 1000) * 1000);
  await assert.rejects(issue(hourly, 2 * HOUR), (e: unknown) => isWeftError(e, 'WEFT_E_VALIDATION'));
});

test('rotation, trust first: prepared (new root trusted, old one signs), active at its time, old root gone after the overlap', async () => {
  const clock = manualClock();
  const store = new MemoryStore();
  const ca = await CertificateAuthority.open({ store, trustDomain: TRUST_DOMAIN, now: clock.now });
  const replica = await CertificateAuthority.open({ store, trustDomain: TRUST_DOMAIN, now: clock.now });
  const [oldRoot] = await ca.trustBundle();
  const oldId = (await ca.status()).active.id;
  const oldSvid = await issue(ca);
  assert.equal((await ca.status()).phase, 'stable');

  // Prepared for half the SVID lifetime by default (every workload renews once meanwhile); the
  // overlap then lasts twice the SVID lifetime.
  const status = await ca.startRotation();
  const start = clock.now();
  assert.equal(status.phase, 'prepared');
  assert.equal(status.active.id, oldId);
  const newId = status.prepared!.id;
  assert.notEqual(newId, oldId);
  assert.equal(status.prepared!.activateAt.getTime(), start + 12 * HOUR);
  assert.equal(status.prepared!.retiringTrustedUntil.getTime(), start + 12 * HOUR + 2 * DAY);
  assert.equal(status.nextChangeAt?.getTime(), start + 12 * HOUR);
  assert.equal(status.retiring, undefined);
  const preparedBundle = await ca.trustBundle();
  assert.equal(preparedBundle.length, 2);
  assert.equal(preparedBundle[0], oldRoot, 'the root the CA signs under comes first');
  const newRoot = preparedBundle[1]!;
  assert.deepEqual(status.prepared!.roots, [new X509Certificate(newRoot).fingerprint256]);
  // Both keys are stored while prepared; the old root still signs, on every replica, and hands
  // out both roots with each SVID.
  assert.equal((await store.list('/weft/ca/keys/')).items.length, 2);
  for (const signer of [ca, replica]) {
    const svid = await issue(signer);
    assert.equal(svid.authorityId, oldId);
    assert.ok(signedBy(svid.certificatePem, oldRoot!));
    assert.deepEqual(splitPem(svid.trustBundlePem), [oldRoot, newRoot]);
  }
  // Nothing to finish yet, and no second rotation.
  for (const op of [() => ca.finishRotation(), () => replica.startRotation()])
    await assert.rejects(op(), (e: unknown) => {
      assert.ok(isWeftError(e, 'WEFT_E_CA_ROTATION'));
      assert.match(e.message, new RegExp(`being prepared: CA ${newId} is trusted, and signs from `));
      return true;
    });
  assert.equal(await ca.maintain(), false);

  // At its time the prepared root signs, on every replica, before anything is written.
  clock.advance(12 * HOUR - 1);
  assert.equal((await replica.status()).phase, 'prepared');
  clock.advance(1);
  const active = await replica.status();
  assert.equal(active.phase, 'overlap');
  assert.equal(active.active.id, newId);
  assert.deepEqual(active.retiring, {
    id: oldId,
    roots: [new X509Certificate(oldRoot!).fingerprint256],
    trustedUntil: new Date(start + 12 * HOUR + 2 * DAY),
    retiredAt: new Date(start + 12 * HOUR),
  });
  assert.equal(active.nextChangeAt?.getTime(), start + 12 * HOUR + 2 * DAY);
  assert.deepEqual(await replica.trustBundle(), [newRoot, oldRoot]);
  const fresh = await issue(replica);
  assert.equal(fresh.authorityId, newId);
  assert.ok(signedBy(fresh.certificatePem, newRoot));
  assert.match((await store.get(CA_STATE_KEY))!.value, /"prepared"/);
  // maintain() records it: the old key leaves the store.
  assert.equal(await ca.maintain(), true);
  assert.doesNotMatch((await store.get(CA_STATE_KEY))!.value, /"prepared"/);
  assert.deepEqual(
    (await store.list('/weft/ca/keys/')).items.map((k) => k.key),
    [`/weft/ca/keys/${newId}`],
  );
  assert.equal(await replica.maintain(), false);
  assert.ok(signedBy(oldSvid.certificatePem, oldRoot!));

  await assert.rejects(ca.startRotation(), (e: unknown) => {
    assert.ok(isWeftError(e, 'WEFT_E_CA_ROTATION'));
    assert.match(e.message, /in its overlap until .*finishRotation\(\)/);
    return true;
  });

  clock.advance(2 * DAY);
  assert.deepEqual(await replica.trustBundle(), [newRoot]);
  assert.equal((await ca.status()).retiring, undefined);
  assert.equal((await ca.status()).phase, 'stable');
  assert.equal((await ca.status()).nextChangeAt, undefined);
  assert.equal(await ca.maintain(), true);
  assert.doesNotMatch((await store.get(CA_STATE_KEY))!.value, /retiring/);
  assert.equal(await replica.maintain(), false);

  // Next rotation, active at once (prepared for no time) and ended early on purpose.
  const now = await ca.startRotation({ overlapMs: 3 * DAY, prepareMs: 0 });
  assert.equal(now.phase, 'overlap');
  assert.equal(now.retiring?.retiredAt?.getTime(), clock.now());
  assert.equal((await ca.trustBundle()).length, 2);
  assert.equal((await store.list('/weft/ca/keys/')).items.length, 1);
  assert.equal(await ca.finishRotation(), true);
  assert.equal((await ca.trustBundle()).length, 1);
  assert.equal(await ca.finishRotation(), false);
  // Every problem at once, with its field.
  await assert.rejects(ca.startRotation({ overlapMs: HOUR, prepareMs: -1 }), (e: unknown) => {
    assert.ok(isWeftError(e, 'WEFT_E_VALIDATION'));
    assert.deepEqual(
      e.errors.map((x) => x.path),
      ['overlapMs', 'prepareMs'],
    );
    assert.match(e.message, /overlapMs: must be at least the SVID lifetime, svidTtlMs \(86400000 ms = 24h\)/);
    return true;
  });
});

test('a rotation survives restarts; a state stored before rotations were prepared reads as it was', async () => {
  const clock = manualClock();
  const store = new MemoryStore();
  const ca = await CertificateAuthority.open({ store, trustDomain: TRUST_DOMAIN, now: clock.now });
  const { prepared } = await ca.startRotation({ prepareMs: HOUR });
  // A restart while prepared: the same authority, the same time.
  const restarted = await CertificateAuthority.open({ store, trustDomain: TRUST_DOMAIN, now: clock.now });
  const again = await restarted.status();
  assert.equal(again.phase, 'prepared');
  assert.equal(again.prepared?.id, prepared!.id);
  assert.equal(again.prepared?.activateAt.getTime(), prepared!.activateAt.getTime());
  // Down past the activation: opened as active, and maintain() records it.
  clock.advance(HOUR);
  const late = await CertificateAuthority.open({ store, trustDomain: TRUST_DOMAIN, now: clock.now });
  assert.equal((await late.status()).active.id, prepared!.id);
  assert.equal(await late.maintain(), true);

  // What the previous version wrote during an overlap: no retiredAt, no prepared.
  const state = JSON.parse((await store.get(CA_STATE_KEY))!.value) as { retiring: { retiredAt?: number } };
  delete state.retiring.retiredAt;
  await store.txn([{ type: 'put', key: CA_STATE_KEY, value: JSON.stringify(state) }]);
  const old = await CertificateAuthority.open({ store, trustDomain: TRUST_DOMAIN, now: clock.now });
  const status = await old.status();
  assert.equal(status.phase, 'overlap');
  assert.equal(status.retiring?.retiredAt, undefined);
  assert.equal((await old.trustBundle()).length, 2);
  assert.equal(await old.finishRotation(), true);
});

test('bring your own intermediate: SVIDs carry the chain, the bundle is the supplied root', async () => {
  const root = await makeTestCa({ name: 'Corp Root' });
  const intermediate = await makeTestCa({ name: 'Mesh Intermediate', issuer: root });
  const store = new MemoryStore();
  const ca = await CertificateAuthority.open({
    store,
    trustDomain: TRUST_DOMAIN,
    supplied: {
      certificatePem: intermediate.certificatePem,
      privateKeyPem: intermediate.privateKeyPem,
      trustAnchorsPem: root.certificatePem,
    },
  });
  assert.equal((await ca.status()).active.source, 'supplied');
  assert.deepEqual(await ca.trustBundle(), [root.certificatePem]);
  const svid = await issue(ca);
  const chain = splitPem(svid.chainPem);
  assert.equal(chain.length, 2);
  assert.equal(chain[1], intermediate.certificatePem);
  assert.ok(signedBy(chain[0]!, intermediate.certificatePem));
  assert.ok(signedBy(chain[1]!, root.certificatePem));
  assert.equal(svid.trustBundlePem, root.certificatePem);
  // The root's key was never given, so it is nowhere in the store (the line after the fixed PKCS#8 header).
  const text = await storeText(store);
  assert.ok(!text.includes(root.privateKeyPem.split('\n')[2]!));
  assert.ok(text.includes(intermediate.privateKeyPem.split('\n')[2]!)); // (the check can see keys)

  // A renewed intermediate under the same root replaces the old one on the next start.
  const renewed = await makeTestCa({ name: 'Mesh Intermediate 2', issuer: root });
  const clock = manualClock();
  const reopened = await CertificateAuthority.open({
    store,
    trustDomain: TRUST_DOMAIN,
    now: clock.now,
    supplied: {
      certificatePem: renewed.certificatePem + root.certificatePem,
      privateKeyPem: renewed.privateKeyPem,
    },
  });
  const again = await issue(reopened);
  assert.ok(signedBy(again.certificatePem, renewed.certificatePem));
  assert.equal((await reopened.status()).retiring, undefined);
  assert.equal((await store.list('/weft/ca/keys/')).items.length, 1);

  // Other roots need a rotation, which says so.
  const otherRoot = await makeTestCa({ name: 'Other Root' });
  const supplied = { certificatePem: otherRoot.certificatePem, privateKeyPem: otherRoot.privateKeyPem };
  await assert.rejects(
    CertificateAuthority.open({ store, trustDomain: TRUST_DOMAIN, supplied }),
    (e: unknown) => {
      assert.ok(isWeftError(e, 'WEFT_E_CA_ROTATION'));
      assert.match(e.message, /startRotation\(\{ supplied \}\)/);
      return true;
    },
  );
  const { prepared } = await reopened.startRotation({ supplied, prepareMs: HOUR });
  // Prepared: both roots trusted, the intermediate still signs; a replica started with the new
  // material meanwhile is fine.
  assert.deepEqual(await reopened.trustBundle(), [root.certificatePem, otherRoot.certificatePem]);
  assert.ok(signedBy((await issue(reopened)).certificatePem, renewed.certificatePem));
  await CertificateAuthority.open({ store, trustDomain: TRUST_DOMAIN, supplied });
  assert.equal(prepared?.source, 'supplied');
  clock.advance(HOUR);
  assert.deepEqual(await reopened.trustBundle(), [otherRoot.certificatePem, root.certificatePem]);
  assert.ok(signedBy((await issue(reopened)).certificatePem, otherRoot.certificatePem));
});

test('the SVID never outlives the supplied signing certificate', async () => {
  const clock = manualClock();
  const notAfter = new Date(Math.floor((clock.now() + 2 * HOUR) / 1000) * 1000);
  const root = await makeTestCa({ name: 'Short Root', notAfter });
  const ca = await CertificateAuthority.open({
    store: new MemoryStore(),
    trustDomain: TRUST_DOMAIN,
    now: clock.now,
    supplied: { certificatePem: root.certificatePem, privateKeyPem: root.privateKeyPem },
  });
  assert.equal((await issue(ca)).notAfter.getTime(), notAfter.getTime());
  clock.advance(3 * HOUR);
  await assert.rejects(issue(ca), (e: unknown) => {
    assert.ok(isWeftError(e, 'WEFT_E_CA_MATERIAL'));
    assert.match(e.message, /expired at/);
    return true;
  });
});

test('unusable supplied material is refused with every problem and its field', async () => {
  const root = await makeTestCa({ name: 'Corp Root' });
  const intermediate = await makeTestCa({ name: 'Mesh Intermediate', issuer: root });
  const notCa = await makeTestCa({ name: 'Just A Leaf', issuer: root, ca: false });
  const foreign = await makeTestCa({ name: 'Foreign', spiffeId: 'spiffe://other.org' });
  const open = (supplied: Parameters<typeof CertificateAuthority.open>[0]['supplied']) =>
    CertificateAuthority.open({ store: new MemoryStore(), trustDomain: TRUST_DOMAIN, supplied });
  const problems = async (p: Promise<unknown>): Promise<string[]> => {
    let out: string[] = [];
    await assert.rejects(p, (e: unknown) => {
      assert.ok(isWeftError(e, 'WEFT_E_CA_MATERIAL'), String(e));
      out = e.errors.map((x) => `${x.path}: ${x.message}`);
      return true;
    });
    return out;
  };

  // An intermediate with the wrong key and no root to chain to.
  const a = await problems(
    open({ certificatePem: intermediate.certificatePem, privateKeyPem: root.privateKeyPem }),
  );
  assert.ok(
    a.some((m) => m.startsWith('privateKeyPem: is not the key')),
    a.join('\n'),
  );
  assert.ok(
    a.some((m) => m.startsWith('trustAnchorsPem: is required')),
    a.join('\n'),
  );
  // Not a CA; a trust anchor that did not issue it.
  const b = await problems(
    open({
      certificatePem: notCa.certificatePem,
      privateKeyPem: notCa.privateKeyPem,
      trustAnchorsPem: foreign.certificatePem,
    }),
  );
  assert.ok(
    b.some((m) => m.startsWith('certificatePem[0]: is not a CA certificate')),
    b.join('\n'),
  );
  assert.ok(
    b.some((m) => m.startsWith('certificatePem[0]: may not sign certificates')),
    b.join('\n'),
  );
  assert.ok(
    b.some((m) => m.startsWith('trustAnchorsPem: no trust anchor issued')),
    b.join('\n'),
  );
  // Another trust domain's CA; unreadable and encrypted keys.
  const c = await problems(open({ certificatePem: foreign.certificatePem, privateKeyPem: 'nonsense' }));
  assert.ok(
    c.some((m) => m.includes('names trust domain "other.org"')),
    c.join('\n'),
  );
  assert.ok(
    c.some((m) => m.startsWith('privateKeyPem: is not a readable PEM private key')),
    c.join('\n'),
  );
  const d = await problems(
    open({ certificatePem: root.certificatePem, privateKeyPem: '-----BEGIN ENCRYPTED PRIVATE KEY-----\n' }),
  );
  assert.ok(
    d.some((m) => m.startsWith('privateKeyPem: is encrypted')),
    d.join('\n'),
  );
  // An expired root.
  const oldRoot = await makeTestCa({ name: 'Old Root', notAfter: new Date(Date.now() - 60_000) });
  const underOld = await makeTestCa({ name: 'Under Old', issuer: oldRoot });
  const f = await problems(
    open({
      certificatePem: underOld.certificatePem,
      privateKeyPem: underOld.privateKeyPem,
      trustAnchorsPem: oldRoot.certificatePem,
    }),
  );
  assert.deepEqual(
    f.map((m) => m.replace(/at .*/, 'at …')),
    ['trustAnchorsPem[0]: expired at …'],
  );
  const e = await problems(open({ certificatePem: root.privateKeyPem, privateKeyPem: root.privateKeyPem }));
  assert.ok(
    e.some((m) => m.startsWith('certificatePem[0]: is a PRIVATE KEY block')),
    e.join('\n'),
  );
});

test('a replica that reads the state just before a rotation deletes its key re-reads, not "corrupt"', async () => {
  const store = new MemoryStore();
  const a = await CertificateAuthority.open({ store, trustDomain: TRUST_DOMAIN });
  // The replica's store: when it reads the key record named by `trap`, a rotation lands first.
  let trap: string | undefined;
  const racy: Store = {
    revision: () => store.revision(),
    get: async (key, opts) => {
      if (key === trap) {
        trap = undefined;
        await a.startRotation({ prepareMs: 0 });
      }
      return store.get(key, opts);
    },
    list: (prefix) => store.list(prefix),
    history: (key) => store.history(key),
    txn: (ops, conditions) => store.txn(ops, conditions),
    watch: (prefix, onEvent, opts) => store.watch(prefix, onEvent, opts),
    grantLease: (ttl) => store.grantLease(ttl),
    keepAlive: (id) => store.keepAlive(id),
    revokeLease: (id) => store.revokeLease(id),
    close: () => store.close(),
  };
  const b = await CertificateAuthority.open({ store: racy, trustDomain: TRUST_DOMAIN });
  // Make b's cached state stale, so its next signature reloads the state and then this key.
  await a.startRotation({ prepareMs: 0 });
  await a.finishRotation();
  trap = `/weft/ca/keys/${(await a.status()).active.id}`;
  const svid = await issue(b);
  assert.equal(trap, undefined, 'the rotation happened mid-read');
  assert.equal(svid.authorityId, (await a.status()).active.id);
});
