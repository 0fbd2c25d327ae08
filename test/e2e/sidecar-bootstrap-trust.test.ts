// End to end: how a real `weft sidecar`/`weft run` decides to trust the control plane before its
// first SVID. Its join token carries the pin of the control plane's CA root: a bundle without
// that root (here: the pin of another CA's root, made with a second CA instance) stops it before
// the app starts, nothing registered, the token unspent. --trust-bundle replaces the bundle of
// /api/v1/info and still has to verify the control plane; a token without a pin still joins, with
// a warning that the bundle was taken on first use.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { CertificateAuthority, caPinOf, splitJoinToken } from '../../src/ca/index.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import {
  apiFetch,
  FREE_PORT_FLAGS,
  freePort,
  joinTokenFor,
  runWeft,
  singleUseToken,
  startControlPlane,
  startMeshProcess,
  tempDir,
  tokenUses,
  type ControlPlaneProcess,
} from '../helpers/weft-process.js';

let cp: ControlPlaneProcess;
let dir: string;
/** The control plane's trust bundle, and another CA's root, as files. */
let rightBundle: string;
let wrongBundle: string;
let foreignPin: string;

before(async () => {
  dir = tempDir();
  cp = await startControlPlane({ dataDir: join(dir, 'data') });
  const info = (await (await fetch(`${cp.apiUrl}/api/v1/info`)).json()) as { trustBundle: string };
  rightBundle = join(dir, 'right.pem');
  writeFileSync(rightBundle, info.trustBundle);
  const foreign = await CertificateAuthority.open({ store: new MemoryStore(), trustDomain: 'weft.local' });
  const [foreignRoot] = await foreign.trustBundle();
  foreignPin = caPinOf(foreignRoot!);
  wrongBundle = join(dir, 'wrong.pem');
  writeFileSync(wrongBundle, foreignRoot!);
});
after(async () => {
  await cp?.stop();
});

/** An app listening on a free port until the test ends. */
async function appPort(t: { after: (fn: () => void) => void }): Promise<number> {
  const server = createServer((_req, res) => res.end('ok'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

async function registered(service: string): Promise<string[]> {
  const res = await apiFetch(`${cp.apiUrl}/api/v1/resources/workloads`);
  const body = (await res.json()) as {
    items: Array<{ metadata: { name: string; labels?: Record<string, string> } }>;
  };
  return body.items.filter((w) => w.metadata.labels?.app === service).map((w) => w.metadata.name);
}

/** `weft run` of an app that would listen on a port (so it would register) and print a marker. */
async function run(
  service: string,
  token: string,
  extra: string[] = [],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string; marker: string }> {
  const port = await freePort();
  const marker = `app-ran-${service}-${process.pid}-${port}`;
  const app = `console.log('${marker}'); require('http').createServer((q, s) => s.end()).listen(${port}, '127.0.0.1'); setTimeout(() => process.exit(0), 500)`;
  const r = await runWeft(
    [
      'run',
      '--service',
      service,
      '--control-plane',
      cp.apiUrl,
      '--app-port',
      String(port),
      ...FREE_PORT_FLAGS,
      ...extra,
      '--',
      process.execPath,
      '-e',
      app,
    ],
    { token, env },
  );
  return { ...r, marker };
}

test("a token pinned to another CA's root: weft run stops before the app, nothing registered, token unspent", async () => {
  const { token, id } = await singleUseToken(cp.apiUrl, 'pinned-elsewhere');
  const wrong = `${splitJoinToken(token).secret}.${foreignPin}`;
  const r = await run('pinned-elsewhere', wrong);
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /error: the trust bundle the control plane sent in \/api\/v1\/info does not match the join token's CA pin/,
  );
  assert.ok(r.stderr.includes(foreignPin), r.stderr);
  assert.match(
    r.stderr,
    /CA root was rotated since the token was made: make a new one with `weft token create --service-account pinned-elsewhere`/,
  );
  assert.match(r.stderr, /something is impersonating the control plane/);
  assert.match(r.stderr, /\[WEFT_E_CA_PIN_MISMATCH\]/);
  assert.ok(!r.stdout.includes(r.marker), 'the app must not have started');
  assert.deepEqual(await registered('pinned-elsewhere'), []);
  assert.equal(await tokenUses(cp.apiUrl, id), 0, 'the token must not have been sent');
});

test('a token pinned to the control plane root joins, with no first-use warning', async (t) => {
  // The helpers' tokens (every other e2e test's) come from the API, so they carry the pin.
  const token = await joinTokenFor(cp.apiUrl, 'pinned-here');
  assert.equal(splitJoinToken(token).pin, caPinOf(readFileSync(rightBundle, 'utf8')));
  const p = await startMeshProcess({
    service: 'pinned-here',
    controlPlane: cp.apiUrl,
    appPort: await appPort(t),
  });
  try {
    assert.doesNotMatch(p.stderr(), /first use/);
    assert.equal((await registered('pinned-here')).length, 1);
  } finally {
    await p.stop();
  }
});

test('--trust-bundle: used instead of the info bundle, held to the pin, and the TLS check decides', async (t) => {
  const { token, id } = await singleUseToken(cp.apiUrl, 'given');
  // The wrong root, pinned token: the pin check refuses the given bundle.
  const pinned = await run('given', token, ['--trust-bundle', wrongBundle]);
  assert.equal(pinned.code, 1, pinned.stderr);
  assert.match(
    pinned.stderr,
    new RegExp(`error: --trust-bundle ${wrongBundle} does not match the join token's CA pin`),
  );
  // The wrong root, a token without a pin (nothing to hold the bundle to): the TLS check refuses.
  const pinless = await run('given', splitJoinToken(token).secret, [], { WEFT_TRUST_BUNDLE: wrongBundle });
  assert.equal(pinless.code, 1, pinless.stderr);
  assert.match(
    pinless.stderr,
    new RegExp(
      `error: the workload API at https://\\S+ did not prove it is the control plane ` +
        `\\(spiffe://weft\\.local/ns/weft-system/sa/weft-control-plane\\) under WEFT_TRUST_BUNDLE ${wrongBundle}: `,
    ),
  );
  assert.match(
    pinless.stderr,
    /The join token was not sent\. Does WEFT_TRUST_BUNDLE \S+ hold the mesh's current root/,
  );
  assert.match(pinless.stderr, /\[WEFT_E_CONTROL_PLANE_UNTRUSTED\]/);
  assert.doesNotMatch(pinless.stderr, /first use/);
  for (const r of [pinned, pinless]) assert.ok(!r.stdout.includes(r.marker), 'the app must not have started');
  assert.equal(await tokenUses(cp.apiUrl, id), 0);
  assert.deepEqual(await registered('given'), []);
  // A file without a certificate is refused at once.
  const empty = join(dir, 'empty.pem');
  writeFileSync(empty, 'nothing here\n');
  const none = await run('given', token, ['--trust-bundle', empty]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /--trust-bundle \S+empty\.pem holds no PEM certificate/);
  // The right bundle: it joins.
  const p = await startMeshProcess({
    service: 'given',
    controlPlane: cp.apiUrl,
    appPort: await appPort(t),
    token,
    extra: ['--trust-bundle', rightBundle],
  });
  await p.stop();
  assert.equal(await tokenUses(cp.apiUrl, id), 1);
});

test('a token without a pin still joins, warning that the trust bundle was taken on first use', async (t) => {
  const { token } = await singleUseToken(cp.apiUrl, 'legacy');
  const p = await startMeshProcess({
    service: 'legacy',
    controlPlane: cp.apiUrl,
    appPort: await appPort(t),
    token: splitJoinToken(token).secret,
  });
  try {
    assert.match(p.stderr(), /the join token has no CA pin: the trust bundle was taken on first use/);
    assert.equal((await registered('legacy')).length, 1);
  } finally {
    await p.stop();
  }
});
