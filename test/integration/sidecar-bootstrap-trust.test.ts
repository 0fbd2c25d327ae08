// Integration: a sidecar's first call, when the plain-HTTP /api/v1/info answer was tampered with.
// An impostor's workload API (a real TLS server) must get nothing, the join token least of all,
// whether it appends its own root beside the pinned one, or presents a real SVID of the mesh
// under a control plane ID it wrote into the answer. Then a root rotation of a real in-process
// control plane: what a token made before it can and cannot do, and that its secret stays valid.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { CertificateAuthority, splitJoinToken } from '../../src/ca/index.js';
import { newWorkloadKey, workloadCsr } from '../../src/ca/pkcs10.js';
import type { RunningControlPlane } from '../../src/control-plane/control-plane.js';
import { isWeftError, type WeftErrorCode } from '../../src/errors.js';
import { createLogger, silentLogger, type Logger } from '../../src/log.js';
import { IdentityClient, type JoinInfo } from '../../src/sidecar/identity-client.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { singleUseToken, startInProcessControlPlane, tokenUses } from '../helpers/weft-process.js';

const CONTROL_PLANE_ID = 'spiffe://weft.local/ns/weft-system/sa/weft-control-plane';
let cp: RunningControlPlane;
let info: JoinInfo;

before(async () => {
  cp = await startInProcessControlPlane();
  info = (await (await fetch(`${cp.apiUrl}/api/v1/info`)).json()) as JoinInfo;
});
after(() => cp?.close());

/** A key and SVID chain for `identity`, signed by `ca`. */
async function credential(
  ca: CertificateAuthority,
  identity: { namespace: string; serviceAccount: string },
): Promise<{ key: string; cert: string; bundle: string }> {
  const key = newWorkloadKey();
  const issued = await ca.sign({ csr: workloadCsr(key, ca.spiffeIdFor(identity)), identity });
  return { key: key.privateKeyPem, cert: issued.chainPem, bundle: issued.trustBundlePem };
}

/** An impostor's workload API: TLS 1.3 with the given credential; records every request it gets. */
async function impostor(cred: { key: string; cert: string }): Promise<{
  url: string;
  requests: Array<{ path: string; authorization: string | undefined }>;
  server: Server;
}> {
  const requests: Array<{ path: string; authorization: string | undefined }> = [];
  const server = createServer({ key: cred.key, cert: cred.cert, minVersion: 'TLSv1.3' }, (req, res) => {
    requests.push({ path: req.url ?? '', authorization: req.headers.authorization });
    res.writeHead(500).end('{}');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server };
}

function client(opts: {
  info: JoinInfo;
  token: string;
  serviceAccount: string;
  trustBundle?: { pem: string; source: string };
  logger?: Logger;
}): IdentityClient {
  return new IdentityClient({
    info: opts.info,
    namespace: 'default',
    serviceAccount: opts.serviceAccount,
    token: opts.token,
    trustBundle: opts.trustBundle,
    logger: opts.logger ?? silentLogger(),
  });
}

async function refused(p: Promise<unknown>, code: WeftErrorCode): Promise<string> {
  let message = '';
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isWeftError(e, code), String(e));
    message = e.message;
    return true;
  });
  return message;
}

test('an impostor that appends its own root beside the pinned one gets no request (and no token)', async () => {
  // Its own CA, and a certificate naming the control plane's SPIFFE ID.
  const foreign = await CertificateAuthority.open({ store: new MemoryStore(), trustDomain: 'weft.local' });
  const cred = await credential(foreign, { namespace: 'weft-system', serviceAccount: 'weft-control-plane' });
  const fake = await impostor(cred);
  try {
    const { token, id } = await singleUseToken(cp.apiUrl, 'victim');
    const tampered: JoinInfo = {
      ...info,
      trustBundle: info.trustBundle + cred.bundle,
      workloadApi: fake.url,
    };
    const id1 = client({ info: tampered, token, serviceAccount: 'victim' });
    const message = await refused(id1.start(), 'WEFT_E_CONTROL_PLANE_UNTRUSTED');
    assert.match(
      message,
      /did not prove it is the control plane .* under the root the join token pins \(sha256-/,
    );
    assert.match(message, /The join token was not sent/);
    id1.close();
    assert.deepEqual(fake.requests, []);
    assert.equal(await tokenUses(cp.apiUrl, id), 0);
    // The same token against the real workload API: it works.
    const real = client({ info, token, serviceAccount: 'victim' });
    assert.equal((await real.start()).spiffeId, 'spiffe://weft.local/ns/default/sa/victim');
    real.close();
  } finally {
    fake.server.close();
  }
});

test('an impostor with a real SVID of the mesh cannot pass as the control plane', async () => {
  const cred = await credential(cp.identity.ca, { namespace: 'default', serviceAccount: 'evil' });
  const fake = await impostor(cred);
  try {
    const { token, id } = await singleUseToken(cp.apiUrl, 'victim');
    // It writes its own SPIFFE ID into the answer as the control plane's…
    const claimed = client({
      info: { ...info, workloadApi: fake.url, controlPlaneId: 'spiffe://weft.local/ns/default/sa/evil' },
      token,
      serviceAccount: 'victim',
    });
    const message = await refused(claimed.start(), 'WEFT_E_CONTROL_PLANE_UNTRUSTED');
    assert.match(message, /names the control plane spiffe:\/\/weft\.local\/ns\/default\/sa\/evil/);
    assert.ok(message.includes(`is always ${CONTROL_PLANE_ID}`), message);
    claimed.close();
    // …or leaves the answer's ID alone and presents its SVID anyway.
    const presented = client({ info: { ...info, workloadApi: fake.url }, token, serviceAccount: 'victim' });
    assert.match(
      await refused(presented.start(), 'WEFT_E_CONTROL_PLANE_UNTRUSTED'),
      /presented spiffe:\/\/weft\.local\/ns\/default\/sa\/evil, not spiffe:\/\/weft\.local\/ns\/weft-system/,
    );
    presented.close();
    assert.deepEqual(fake.requests, []);
    assert.equal(await tokenUses(cp.apiUrl, id), 0);
  } finally {
    fake.server.close();
  }
});

test('a token without a pin takes the bundle on first use, and says so in a warning', async () => {
  const { token } = await singleUseToken(cp.apiUrl, 'legacy');
  const lines: string[] = [];
  const logger = createLogger('test', { write: (line: string) => void lines.push(line) });
  logger.level = 'warn';
  const id = client({ info, token: splitJoinToken(token).secret, serviceAccount: 'legacy', logger });
  assert.equal((await id.start()).spiffeId, 'spiffe://weft.local/ns/default/sa/legacy');
  id.close();
  const warnings = lines.map((l) => JSON.parse(l) as { level: number; msg: string });
  assert.equal(warnings.length, 1, lines.join(''));
  assert.equal(warnings[0]!.level, 40);
  assert.match(warnings[0]!.msg, /no CA pin: the trust bundle was taken on first use/);
});

test('a root rotation: a token made before it joins while the new root is prepared, is refused with advice once it signs; a new token works', async () => {
  const { token: before, id: beforeId } = await singleUseToken(cp.apiUrl, 'rot');
  const prepared = once(cp.identity, 'rotated');
  await cp.identity.ca.startRotation({ prepareMs: 1000 });
  await prepared; // the control plane now trusts both roots, and still serves an old-root SVID
  const activated = once(cp.identity, 'rotated');
  const preparing = { ...info, trustBundle: await cp.identity.trustBundlePem() };
  assert.equal(preparing.trustBundle.match(/BEGIN CERTIFICATE/g)?.length, 2);
  // While the new root is only prepared, the old one still vouches for the control plane.
  const early = client({
    info: preparing,
    token: (await singleUseToken(cp.apiUrl, 'rot')).token,
    serviceAccount: 'rot',
  });
  await early.start();
  early.close();
  assert.equal(
    splitJoinToken((await singleUseToken(cp.apiUrl, 'rot')).token).pin,
    splitJoinToken(before).pin,
  );

  await activated; // the prepared root signs now, the control plane's own SVID too
  const overlap = { ...info, trustBundle: await cp.identity.trustBundlePem() };
  assert.equal((await cp.identity.ca.status()).phase, 'overlap');

  // In the overlap the old root is still in the bundle, so the pin matches; but it cannot vouch
  // for the new root the control plane's certificate chains to, and nothing else is trusted.
  const during = client({ info: overlap, token: before, serviceAccount: 'rot' });
  const message = await refused(during.start(), 'WEFT_E_CONTROL_PLANE_UNTRUSTED');
  assert.match(message, /CA root was rotated since the token was made.*make a new token/);
  during.close();
  // With the bundle given out of band (both roots), the same token still joins.
  const given = client({
    info: overlap,
    token: before,
    serviceAccount: 'rot',
    trustBundle: { pem: overlap.trustBundle, source: '--trust-bundle bundle.pem' },
  });
  await given.start();
  given.close();
  assert.equal(await tokenUses(cp.apiUrl, beforeId), 1);

  // A token made now is pinned to the new root, and joins.
  const { token: now } = await singleUseToken(cp.apiUrl, 'rot');
  assert.notEqual(splitJoinToken(now).pin, splitJoinToken(before).pin);
  const fresh = client({ info: overlap, token: now, serviceAccount: 'rot' });
  await fresh.start();
  fresh.close();

  // After the overlap the old root has left the bundle: the pin check itself refuses.
  const { token: unused, id: unusedId } = await singleUseToken(cp.apiUrl, 'rot');
  const stale = `${splitJoinToken(unused).secret}.${splitJoinToken(before).pin}`;
  await cp.identity.ca.finishRotation();
  const after = { ...info, trustBundle: await cp.identity.trustBundlePem() };
  const late = client({ info: after, token: stale, serviceAccount: 'rot' });
  assert.match(
    await refused(late.start(), 'WEFT_E_CA_PIN_MISMATCH'),
    /does not match the join token's CA pin .*rotated since the token was made: make a new one/,
  );
  late.close();
  // The secret itself was never in question.
  assert.equal((await cp.identity.tokens.verify(stale)).tokenId, unusedId);
});
