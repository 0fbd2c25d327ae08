// Integration: a root rotation driven through the control plane's API and CLI, against a real
// in-process control plane on loopback (SVIDs of 1 minute) and a real sidecar identity client
// and xDS agent: admin only; every invalid field named; a prepared root pushed over SDS before
// it signs; the control plane's own certificate and the sidecar's SVID moving to it when it
// activates; the overlap ended; bring-your-own material only where its key cannot be read on
// the way.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { startControlPlane, type RunningControlPlane } from '../../src/control-plane/control-plane.js';
import { silentLogger } from '../../src/log.js';
import type { IdentityClient, JoinInfo } from '../../src/sidecar/identity-client.js';
import { XdsAgent } from '../../src/sidecar/xds-agent.js';
import { apiFetch, eventually, registerControlPlane, runWeft, tempDir } from '../helpers/weft-process.js';
import { startedIdentity } from '../helpers/identity.js';
import { makeTestCa } from '../unit/ca/ca-fixtures.js';

let cp: RunningControlPlane;
let info: JoinInfo;

before(async () => {
  cp = await startControlPlane({
    dataDir: tempDir(),
    apiAddr: '127.0.0.1:0',
    xdsAddr: '127.0.0.1:0',
    trustDomain: 'weft.local',
    logger: silentLogger(),
    svidTtlMs: 60_000,
  });
  registerControlPlane(cp.apiUrl, readFileSync(cp.adminTokenPath!, 'utf8').trim());
  info = (await (await fetch(`${cp.apiUrl}/api/v1/info`)).json()) as JoinInfo;
});
after(() => cp.close());

interface Answer {
  status: number;
  body: Record<string, unknown> & {
    code?: string;
    message?: string;
    errors?: Array<{ path: string; message: string }>;
  };
}

async function call(path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await apiFetch(`${cp.apiUrl}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Answer['body'] };
}

async function token(serviceAccount: string): Promise<string> {
  const r = await call('/api/v1/tokens', { serviceAccount, maxUses: 0 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.token as string;
}

async function workload(serviceAccount: string): Promise<IdentityClient> {
  return startedIdentity(info, serviceAccount, await token(serviceAccount));
}

const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256;
const roots = (bundle: string): string[] =>
  (bundle.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map(fingerprint);
/** The root of `bundle` that issued the first certificate of `chainPem`. */
function issuerIn(chainPem: string, bundle: string): string | undefined {
  const leaf = new X509Certificate(chainPem);
  return (bundle.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [])
    .map((pem) => new X509Certificate(pem))
    .find((root) => leaf.checkIssued(root) && leaf.verify(root.publicKey))?.fingerprint256;
}

test('the CA API is the admin’s alone: 401 without a credential, 403 for a join token or a workload', async () => {
  const fe = await workload('fe');
  try {
    for (const [path, body] of [
      ['/api/v1/ca', undefined],
      ['/api/v1/ca/rotate', {}],
      ['/api/v1/ca/finish', {}],
    ] as const) {
      const anonymous = await call(path, body, { authorization: '' });
      assert.equal(anonymous.status, 401, path);
      assert.equal(anonymous.body.code, 'WEFT_E_UNAUTHENTICATED');
      assert.match(anonymous.body.message!, /manage the certificate authority needs a credential/);
      const joining = await call(path, body, { authorization: `Bearer ${await token('fe')}` });
      assert.equal(joining.status, 403, path);
      assert.equal(joining.body.code, 'WEFT_E_FORBIDDEN');
      const mtls = await fe.call(body === undefined ? 'GET' : 'POST', path, body);
      assert.equal(mtls.status, 403, path);
      assert.match(
        (mtls.json as { message: string }).message,
        /workload spiffe:\/\/weft\.local\/ns\/default\/sa\/fe may not manage the certificate authority/,
      );
    }
    const s = await call('/api/v1/ca');
    assert.equal(s.status, 200);
    assert.equal(s.body.phase, 'stable');
  } finally {
    fe.close();
  }
});

test('a rotate request is checked whole: every bad field named, in the request’s own terms', async () => {
  const bad = await call('/api/v1/ca/rotate', {
    prepareSeconds: -1,
    overlapSeconds: 'x',
    caKey: 'k',
    extra: 1,
  });
  assert.equal(bad.status, 422);
  assert.equal(bad.body.code, 'WEFT_E_VALIDATION');
  assert.deepEqual(bad.body.errors?.map((e) => e.path).sort(), [
    'caCert',
    'extra',
    'overlapSeconds',
    'prepareSeconds',
  ]);
  // The CA's own limit, with the request's field name.
  const short = await call('/api/v1/ca/rotate', { overlapSeconds: 30 });
  assert.equal(short.status, 422);
  assert.deepEqual(
    short.body.errors?.map((e) => e.path),
    ['overlapSeconds'],
  );
  assert.match(
    short.body.message!,
    /overlapSeconds: must be at least the SVID lifetime, svidTtlMs \(60000 ms = 1m\)/,
  );
  // Material that cannot be used: each problem under caCert / caKey.
  const junk = await call('/api/v1/ca/rotate', { caCert: 'not a certificate', caKey: 'not a key' });
  assert.equal(junk.status, 422);
  assert.equal(junk.body.code, 'WEFT_E_CA_MATERIAL');
  assert.ok(
    junk.body.errors?.every((e) => /^ca(Cert|Key)/.test(e.path)),
    JSON.stringify(junk.body.errors),
  );
  assert.equal((await call('/api/v1/ca')).body.phase, 'stable');
});

test('a rotation through the API: pushed to the sidecar before it signs, then signing, then alone', async () => {
  const id = await workload('web');
  const agent = new XdsAgent({
    address: cp.xdsAddress,
    node: { id: 'web-1', cluster: 'web', metadata: { NAMESPACE: 'default' } },
    backoff: { baseMs: 50, maxMs: 500 },
    tls: () => id.xdsTls(),
    logger: silentLogger(),
  });
  const bundles: string[][] = [];
  agent.on('trustBundle', (pem) => {
    bundles.push(roots(pem));
    id.applyPushedBundle(pem);
  });
  agent.start();
  try {
    await eventually('the first bundle', async () => bundles.length === 1);
    const [oldRoot] = bundles[0]!;
    const firstSvid = id.current();

    const servedRotated = once(cp.identity, 'rotated');
    const started = await call('/api/v1/ca/rotate', { prepareSeconds: 1, overlapSeconds: 60 });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    const prepared = started.body.prepared as { id: string; roots: string[]; activateAt: string };
    assert.equal(started.body.phase, 'prepared');
    const newRoot = prepared.roots[0]!;
    await servedRotated;
    // The control plane's listeners trust the prepared root already; its certificate is still old.
    assert.deepEqual(roots(cp.identity.serving().trustBundlePem), [oldRoot, newRoot]);
    assert.equal(issuerIn(cp.identity.serving().chainPem, cp.identity.serving().trustBundlePem), oldRoot);
    await eventually('the prepared bundle to be pushed', async () => bundles.length === 2);
    assert.deepEqual(bundles[1], [oldRoot, newRoot]);
    assert.deepEqual(roots(id.current().trustBundlePem), [oldRoot, newRoot]);
    assert.equal(id.current().chainPem, firstSvid.chainPem, 'nothing to renew while the old root signs');
    const reach = (await call('/api/v1/ca')).body.trustBundle as Record<string, unknown>;
    assert.deepEqual(reach.roots, [oldRoot, newRoot]);

    // One rotation at a time, and no overlap to end yet.
    for (const path of ['/api/v1/ca/rotate', '/api/v1/ca/finish']) {
      const r = await call(path, {});
      assert.equal(r.status, 409, path);
      assert.equal(r.body.code, 'WEFT_E_CA_ROTATION');
      assert.match(
        r.body.message!,
        new RegExp(`being prepared: CA ${prepared.id} is trusted, and signs from`),
      );
    }

    // Activation: the control plane serves a certificate of the new root, the push puts the new
    // root first, and the sidecar renews under it well before its half-life.
    await eventually('the new root first in the pushed bundle', async () => bundles.length === 3, 5000);
    assert.deepEqual(bundles[2], [newRoot, oldRoot]);
    assert.equal(issuerIn(cp.identity.serving().chainPem, cp.identity.serving().trustBundlePem), newRoot);
    await eventually(
      'the SVID to be renewed under the new root',
      async () => issuerIn(id.current().chainPem, id.current().trustBundlePem) === newRoot,
      10_000,
    );
    const overlap = (await call('/api/v1/ca')).body;
    assert.equal(overlap.phase, 'overlap');
    assert.equal((overlap.retiring as { retiredAt: string }).retiredAt, prepared.activateAt);

    const finished = await call('/api/v1/ca/finish', {});
    assert.equal(finished.status, 200);
    assert.equal(finished.body.finished, true);
    assert.equal(finished.body.phase, 'stable');
    await eventually('the new root alone in the pushed bundle', async () => bundles.length === 4);
    assert.deepEqual(bundles[3], [newRoot]);
    assert.deepEqual(roots(id.current().trustBundlePem), [newRoot]);
    // The sidecar still reaches the control plane (its SVID and the served one are both new).
    const renewed = await id.call('POST', '/api/v1/leases', { ttlSeconds: 10 });
    assert.equal(renewed.status, 200);
    const again = await call('/api/v1/ca/finish', {});
    assert.equal(again.body.finished, false);
  } finally {
    agent.close();
    id.close();
  }
});

test('bring your own CA through the API: from loopback its key is taken; the rotation uses it', async () => {
  const root = await makeTestCa({ name: 'Corp Root 2' });
  const r = await call('/api/v1/ca/rotate', {
    caCert: root.certificatePem,
    caKey: root.privateKeyPem,
    prepareSeconds: 0,
    overlapSeconds: 60,
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.phase, 'overlap');
  assert.equal((r.body.active as { source: string }).source, 'supplied');
  assert.deepEqual((r.body.active as { roots: string[] }).roots, [fingerprint(root.certificatePem)]);
  assert.ok(!JSON.stringify(r.body).includes('PRIVATE KEY'));
  assert.equal((await call('/api/v1/ca/finish', {})).body.finished, true);
});

test('a CA key is refused over plain HTTP from another address, and the CLI will not send one there', async (t) => {
  const dir = tempDir();
  const root = await makeTestCa({ name: 'Corp Root 3' });
  writeFileSync(join(dir, 'ca.pem'), root.certificatePem);
  writeFileSync(join(dir, 'ca.key'), root.privateKeyPem);
  const cli = await runWeft(
    ['ca', 'rotate', '--ca-cert', join(dir, 'ca.pem'), '--ca-key', join(dir, 'ca.key')],
    { server: 'http://192.0.2.1:1', adminToken: 'weft-admin-x' },
  );
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, /not sending a CA private key to http:\/\/192\.0\.2\.1:1 over plain HTTP/);

  const address = Object.values(networkInterfaces())
    .flat()
    .find((a) => a?.family === 'IPv4' && !a.internal)?.address;
  if (address === undefined) return t.skip('this host has no non-loopback IPv4 address');
  const open = await startControlPlane({
    dataDir: tempDir(),
    apiAddr: '0.0.0.0:0',
    xdsAddr: '127.0.0.1:0',
    trustDomain: 'weft.local',
    logger: silentLogger(),
    svidTtlMs: 60_000,
  });
  const admin = readFileSync(open.adminTokenPath!, 'utf8').trim();
  try {
    const url = `http://${address}:${new URL(open.apiUrl).port}/api/v1/ca/rotate`;
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
      body: JSON.stringify({ caCert: root.certificatePem, caKey: root.privateKeyPem }),
    });
    const body = (await res.json()) as { code: string; message: string };
    assert.equal(res.status, 400);
    assert.equal(body.code, 'WEFT_E_BAD_REQUEST');
    assert.match(
      body.message,
      /taken only over TLS .* or from a loopback address.*consider that key exposed/,
    );
    // Without a key, the same caller may rotate.
    const plain = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
      body: JSON.stringify({ prepareSeconds: 0 }),
    });
    assert.equal(plain.status, 200);
  } finally {
    await open.close();
  }
});

test('the CLI: ca status, rotate and finish say what happens and when; errors name the flag', async () => {
  const denied = await runWeft(['ca', 'status'], { server: cp.apiUrl, adminToken: null });
  assert.equal(denied.code, 1);
  assert.match(
    denied.stderr,
    /manage the certificate authority needs a credential.*\[WEFT_E_UNAUTHENTICATED\]/,
  );
  const badFlag = await runWeft(['ca', 'rotate', '--prepare', 'soon'], { server: cp.apiUrl });
  assert.equal(badFlag.code, 1);
  assert.match(badFlag.stderr, /--prepare must be a duration like 2d, 24h, 90m, 1h30m or 45s; got "soon"/);
  const half = await runWeft(['ca', 'rotate', '--ca-cert', 'x.pem'], { server: cp.apiUrl });
  assert.match(half.stderr, /--ca-cert and --ca-key go together/);

  const stable = await runWeft(['ca', 'status'], { server: cp.apiUrl });
  assert.equal(stable.code, 0, stable.stderr);
  assert.match(stable.stdout, /^trust domain\s+weft\.local$/m);
  assert.match(stable.stdout, /^phase\s+stable: one root, trusted and signing$/m);
  assert.match(stable.stdout, /^proxies\s+0 of 0 subscribed to the bundle have ACKed it/m);

  const rotated = await runWeft(['ca', 'rotate', '--prepare', '1s', '--overlap', '1m'], {
    server: cp.apiUrl,
  });
  assert.equal(rotated.code, 0, rotated.stderr);
  assert.match(rotated.stdout, /^CA rotation started: CA [0-9a-f]{16} \(generated\) is prepared\.$/m);
  assert.match(rotated.stdout, /^ {2}now\s+its root joins the trust bundle/m);
  assert.match(rotated.stdout, /it signs every SVID, the control plane's own too/);
  assert.match(rotated.stdout, /Join tokens made before \S+ are pinned to the old root/);
  const again = await runWeft(['ca', 'rotate'], { server: cp.apiUrl });
  assert.equal(again.code, 1);
  assert.match(again.stderr, /a rotation is being prepared: .*\[WEFT_E_CA_ROTATION\]/);
  const preparing = await runWeft(['ca', 'status'], { server: cp.apiUrl });
  assert.match(preparing.stdout, /^prepared\s+[0-9a-f]{16} \(generated\) .*; signs from /m);

  await eventually(
    'the rotation to be active',
    async () => ((await call('/api/v1/ca')).body.phase === 'overlap' ? true : false),
    5000,
  );
  const overlap = await runWeft(['ca', 'status'], { server: cp.apiUrl });
  assert.match(overlap.stdout, /^phase\s+overlap: the new root signs, the old one is trusted until /m);
  assert.match(overlap.stdout, /^retiring\s+[0-9a-f]{16}, trusted until .*its SVIDs expire by /m);
  const finished = await runWeft(['ca', 'finish'], { server: cp.apiUrl });
  assert.equal(finished.code, 0, finished.stderr);
  assert.match(finished.stdout, /^Rotation finished: only CA [0-9a-f]{16}'s roots are trusted now/);
  const nothing = await runWeft(['ca', 'finish'], { server: cp.apiUrl });
  assert.match(nothing.stdout, /^No rotation overlap to end/);
  const json = await runWeft(['ca', 'status', '-o', 'json'], { server: cp.apiUrl });
  assert.equal((JSON.parse(json.stdout) as { phase: string }).phase, 'stable');
});
