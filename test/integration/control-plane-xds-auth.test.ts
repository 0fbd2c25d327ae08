// Integration: the control plane's xDS port is TLS 1.3 and serves a stream only to a proxy that
// proves who it is (its X.509-SVID, or a join token as call metadata), and only for nodes of
// that identity's namespace and service account. Real gRPC over real TLS against an in-process
// control plane; certificates from its own CA, and from a second CA it does not trust.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { RunningControlPlane } from '../../src/control-plane/control-plane.js';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { newWorkloadKey, workloadCsr } from '../../src/ca/pkcs10.js';
import { uriSans } from '../../src/ca/spiffe-id.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { silentLogger } from '../../src/log.js';
import { decodeDiscoveryResponse, encodeDiscoveryRequest, structFromJson } from '../../src/xds/codec.js';
import { TypeUrl } from '../../src/xds/types.js';
import { apiFetch, startInProcessControlPlane } from '../helpers/weft-process.js';

let cp: RunningControlPlane;
let bundle: string;
const METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

interface Credential {
  key: string;
  chain: string;
}

before(async () => {
  cp = await startInProcessControlPlane();
  bundle = await cp.identity.trustBundlePem();
});

after(async () => {
  await cp?.close();
});

async function svid(namespace: string, serviceAccount: string, ca = cp.identity.ca): Promise<Credential> {
  const key = newWorkloadKey();
  const spiffeId = `spiffe://weft.local/ns/${namespace}/sa/${serviceAccount}`;
  const issued = await ca.sign({ csr: workloadCsr(key, spiffeId), identity: { namespace, serviceAccount } });
  return { key: key.privateKeyPem, chain: issued.chainPem };
}

interface Outcome {
  /** The first DiscoveryResponse's type, if one came. */
  typeUrl?: string;
  code?: number;
  details?: string;
  /** The certificate the server presented. */
  serverCert?: PeerCertificate;
}

/** An outcome for an assertion message (the certificate object is circular). */
function show(o: Outcome): string {
  return JSON.stringify({ ...o, serverCert: o.serverCert?.fingerprint256 });
}

/**
 * One ADS stream: asks for every Cluster as `node`, and resolves with the first response or the
 * status the stream ended with.
 */
function openStream(opts: {
  credential?: Credential;
  plaintext?: boolean;
  token?: string;
  node: Record<string, unknown>;
  roots?: string;
}): Promise<Outcome> {
  let serverCert: PeerCertificate | undefined;
  const channel = opts.plaintext
    ? grpc.credentials.createInsecure()
    : grpc.credentials.createSsl(
        Buffer.from(opts.roots ?? bundle),
        opts.credential ? Buffer.from(opts.credential.key) : null,
        opts.credential ? Buffer.from(opts.credential.chain) : null,
        {
          checkServerIdentity: (_host, cert) => {
            serverCert = cert;
            return undefined;
          },
        },
      );
  const address = cp.xdsAddress;
  const client = new grpc.Client(address, channel, { 'grpc.ssl_target_name_override': 'weft.local' });
  const metadata = new grpc.Metadata();
  if (opts.token !== undefined) metadata.set('authorization', `Bearer ${opts.token}`);
  return new Promise<Outcome>((resolve) => {
    const call = client.makeBidiStreamRequest<object, Buffer>(
      METHOD,
      (req) => Buffer.from(encodeDiscoveryRequest(req)),
      (b) => b,
      metadata,
      { deadline: Date.now() + 5000 },
    );
    const done = (o: Outcome): void => {
      call.cancel();
      client.close();
      resolve({ ...o, ...(serverCert ? { serverCert } : {}) });
    };
    call.on('data', (b: Buffer) => done({ typeUrl: decodeDiscoveryResponse(b).type_url }));
    call.on('error', (e: grpc.ServiceError) => done({ code: e.code, details: e.details }));
    call.write({
      type_url: TypeUrl.Cluster,
      resource_names: [],
      node: { id: String(opts.node.id ?? 'auth-test'), metadata: structFromJson(opts.node) },
    });
  });
}

/** A join token from the admin API (apiFetch sends the admin token), with its id. */
async function createToken(fields: Record<string, unknown>): Promise<{ token: string; id: string }> {
  const res = await apiFetch(`${cp.apiUrl}/api/v1/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ namespace: 'default', ...fields }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as { token: string; id: string };
}

/**
 * An ADS stream held open, as a proxy holds one. `request` sends a DiscoveryRequest and resolves
 * at the next response; `ended` resolves with the status the stream ends with.
 */
function heldStream(opts: { credential?: Credential; token?: string; roots?: string }) {
  const client = new grpc.Client(
    cp.xdsAddress,
    grpc.credentials.createSsl(
      Buffer.from(opts.roots ?? bundle),
      opts.credential ? Buffer.from(opts.credential.key) : null,
      opts.credential ? Buffer.from(opts.credential.chain) : null,
      { checkServerIdentity: () => undefined },
    ),
    { 'grpc.ssl_target_name_override': 'weft.local' },
  );
  const metadata = new grpc.Metadata();
  if (opts.token !== undefined) metadata.set('authorization', `Bearer ${opts.token}`);
  const call = client.makeBidiStreamRequest<object, Buffer>(
    METHOD,
    (req) => Buffer.from(encodeDiscoveryRequest(req)),
    (b) => b,
    metadata,
    {},
  );
  const ended = new Promise<grpc.ServiceError>((resolve) => call.on('error', resolve));
  return {
    ended,
    request(req: object): Promise<unknown> {
      const next = new Promise((resolve) => call.once('data', resolve));
      call.write(req);
      return next;
    },
    close(): void {
      call.cancel();
      client.close();
    },
  };
}

test('without a credential the stream is refused UNAUTHENTICATED, saying what to present', async () => {
  const r = await openStream({ node: { id: 'anon', NAMESPACE: 'default' } });
  assert.equal(r.code, grpc.status.UNAUTHENTICATED, show(r));
  assert.match(r.details!, /X\.509-SVID as its TLS client certificate, or a join token/);
  assert.equal(r.typeUrl, undefined);
});

test('plaintext gRPC to the xDS port gets no configuration', async () => {
  const r = await openStream({ plaintext: true, node: { id: 'plain', NAMESPACE: 'default' } });
  assert.equal(r.typeUrl, undefined);
  assert.equal(r.code, grpc.status.UNAVAILABLE, show(r));
});

test('TLS below 1.3 is refused at the handshake', async () => {
  const [host, port] = [
    cp.xdsAddress.slice(0, cp.xdsAddress.lastIndexOf(':')),
    Number(cp.xdsAddress.split(':').at(-1)),
  ];
  const err = await new Promise<Error | undefined>((resolve) => {
    const s = tlsConnect({
      host,
      port,
      maxVersion: 'TLSv1.2',
      ALPNProtocols: ['h2'],
      ca: bundle,
      checkServerIdentity: () => undefined,
    });
    s.once('secureConnect', () => {
      s.destroy();
      resolve(undefined);
    });
    s.once('error', resolve);
  });
  assert.ok(err, 'a TLS 1.2 handshake succeeded');
  assert.match(String((err as NodeJS.ErrnoException).code ?? err.message), /VERSION|PROTOCOL|ALERT/i);
});

test("an SVID gets its own namespace's config; the server presents the control plane's SPIFFE ID", async () => {
  const fe = await svid('default', 'fe');
  const r = await openStream({
    credential: fe,
    node: { id: 'fe-1', NAMESPACE: 'default', SERVICE_ACCOUNT: 'fe' },
  });
  assert.equal(r.typeUrl, TypeUrl.Cluster, show(r));
  assert.deepEqual(uriSans(r.serverCert), ['spiffe://weft.local/ns/weft-system/sa/weft-control-plane']);
});

test('the proxies listing shows who each stream proved to be', async () => {
  // Keep a stream open while listing: a proxy counts once its first request is served.
  const stream = heldStream({ credential: await svid('default', 'fe') });
  try {
    await stream.request({
      type_url: TypeUrl.Cluster,
      resource_names: [],
      node: { id: 'listed-fe', metadata: structFromJson({ NAMESPACE: 'default' }) },
    });
    const res = await apiFetch(`${cp.apiUrl}/api/v1/proxies`);
    const body = (await res.json()) as { items: Array<{ node: { id: string }; identity: string }> };
    const mine = body.items.find((p) => p.node.id === 'listed-fe');
    assert.equal(mine?.identity, 'spiffe://weft.local/ns/default/sa/fe', JSON.stringify(body.items));
  } finally {
    stream.close();
  }
});

test("an SVID may not ask for another namespace's node, nor another service account's", async () => {
  const fe = await svid('default', 'fe');
  const other = await openStream({ credential: fe, node: { id: 'c-1', NAMESPACE: 'team-c' } });
  assert.equal(other.code, grpc.status.PERMISSION_DENIED, show(other));
  assert.match(
    other.details!,
    /spiffe:\/\/weft\.local\/ns\/default\/sa\/fe may not receive .* namespace "team-c"/,
  );
  // No NAMESPACE in the node means `default`, as for the compiler.
  const unnamed = await openStream({ credential: await svid('team-c', 'c'), node: { id: 'x' } });
  assert.equal(unnamed.code, grpc.status.PERMISSION_DENIED, show(unnamed));
  const sa = await openStream({
    credential: fe,
    node: { id: 'be-1', NAMESPACE: 'default', SERVICE_ACCOUNT: 'be' },
  });
  assert.equal(sa.code, grpc.status.PERMISSION_DENIED, show(sa));
  assert.match(sa.details!, /service account "be"/);
  assert.equal(sa.typeUrl, undefined);
});

test('a certificate from a CA the control plane does not trust is refused', async () => {
  const foreignCa = await CertificateAuthority.open({
    store: new MemoryStore(),
    trustDomain: 'weft.local',
    logger: silentLogger(),
  });
  const forged = await svid('default', 'fe', foreignCa);
  const r = await openStream({ credential: forged, node: { id: 'forged', NAMESPACE: 'default' } });
  assert.equal(r.code, grpc.status.UNAUTHENTICATED, show(r));
  assert.equal(r.typeUrl, undefined);
});

test('a join token as call metadata opens a stream without being used up; revoked, it does not', async () => {
  const { token, id } = await createToken({ serviceAccount: 'envoy', maxUses: 1 });

  // With its CA pin, without it, or with a wrong one: the secret decides.
  const secret = token.slice(0, token.indexOf('.'));
  assert.match(secret, /^weft-jt-[A-Za-z0-9_-]{43}$/);
  for (const [i, form] of [token, secret, `${secret}.sha256-${'x'.repeat(43)}`].entries()) {
    const r = await openStream({ token: form, node: { id: `envoy-${i}`, NAMESPACE: 'default' } });
    assert.equal(r.typeUrl, TypeUrl.Cluster, show(r));
  }
  const wrongNs = await openStream({ token, node: { id: 'envoy-x', NAMESPACE: 'team-c' } });
  assert.equal(wrongNs.code, grpc.status.PERMISSION_DENIED, show(wrongNs));
  const list = (await (await apiFetch(`${cp.apiUrl}/api/v1/tokens`)).json()) as {
    items: Array<{ id: string; uses: number }>;
  };
  assert.equal(list.items.find((t) => t.id === id)?.uses, 0, 'opening xDS streams used the token up');

  const bad = await openStream({
    token: 'weft-jt-not-a-token',
    node: { id: 'envoy-y', NAMESPACE: 'default' },
  });
  assert.equal(bad.code, grpc.status.UNAUTHENTICATED, show(bad));
  const revoke = await apiFetch(`${cp.apiUrl}/api/v1/tokens/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id }),
  });
  assert.equal(revoke.status, 200, await revoke.text());
  const revoked = await openStream({ token, node: { id: 'envoy-z', NAMESPACE: 'default' } });
  assert.equal(revoked.code, grpc.status.UNAUTHENTICATED, show(revoked));
  assert.match(revoked.details!, /revoked/);
});

test('revoking a join token ends the xDS streams opened with it, and only those', async () => {
  const revokedOne = await createToken({ serviceAccount: 'envoy-a' });
  const keptOne = await createToken({ serviceAccount: 'envoy-b' });
  // Two long-lived streams, each past its first response.
  const a = heldStream({ token: revokedOne.token });
  const b = heldStream({ token: keptOne.token });
  const clusters = (nodeId: string): object => ({
    type_url: TypeUrl.Cluster,
    resource_names: [],
    node: { id: nodeId, metadata: structFromJson({ NAMESPACE: 'default' }) },
  });
  try {
    await Promise.all([a.request(clusters('envoy-a-1')), b.request(clusters('envoy-b-1'))]);
    const revoke = await apiFetch(`${cp.apiUrl}/api/v1/tokens/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: revokedOne.id }),
    });
    assert.equal(revoke.status, 200, await revoke.text());
    // Bounded, so that a stream left open fails here rather than at the file's timeout.
    let timer: NodeJS.Timeout | undefined;
    const err = await Promise.race([
      a.ended,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error('the revoked token’s stream was still open after 10 s')),
          10_000,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    assert.equal(err.code, grpc.status.UNAUTHENTICATED, err.message);
    assert.match(err.details, /revoked/);
    // The other token's stream is still served: a new response arrives on it.
    await b.request({ type_url: TypeUrl.Listener, resource_names: [] });
  } finally {
    a.close();
    b.close();
  }
});

test('a root rotation reissues the served certificate: new connections see it, old and new SVIDs work', async () => {
  const before = await openStream({
    credential: await svid('default', 'fe'),
    node: { id: 'r-0', NAMESPACE: 'default' },
  });
  const oldFingerprint = before.serverCert?.fingerprint256;
  assert.ok(oldFingerprint);
  const oldSvid = await svid('default', 'fe');
  const rotated = new Promise((resolve) => cp.identity.once('rotated', resolve));
  // Activated at once (prepared for no time): the served certificate moves to the new root now.
  await cp.identity.ca.startRotation({ prepareMs: 0 });
  await rotated;
  const bothRoots = await cp.identity.trustBundlePem();
  assert.equal(bothRoots.match(/BEGIN CERTIFICATE/g)?.length, 2);

  const after = await openStream({
    credential: oldSvid,
    roots: bothRoots,
    node: { id: 'r-1', NAMESPACE: 'default' },
  });
  assert.equal(after.typeUrl, TypeUrl.Cluster, show(after));
  assert.notEqual(
    after.serverCert?.fingerprint256,
    oldFingerprint,
    'the xDS port still serves the old certificate',
  );
  const fresh = await openStream({
    credential: await svid('default', 'fe'),
    roots: bothRoots,
    node: { id: 'r-2', NAMESPACE: 'default' },
  });
  assert.equal(fresh.typeUrl, TypeUrl.Cluster, show(fresh));
});

test("an SVID may not ask for the configuration of another service account's Workload", async () => {
  const workload = (name: string, serviceAccount: string): object => ({
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'Workload',
    metadata: { name, namespace: 'default', labels: { app: name } },
    spec: { address: '127.0.0.1', serviceAccount, ports: [{ name: 'http', port: 9300, protocol: 'HTTP' }] },
  });
  const applied = await apiFetch(`${cp.apiUrl}/api/v1/apply`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ documents: [workload('pay-1', 'payments'), workload('fe-1', 'fe')] }),
  });
  assert.equal(applied.status, 200, await applied.text());
  const fe = await svid('default', 'fe');
  // After the rotation test above, the control plane chains to whichever root signs now.
  const roots = await cp.identity.trustBundlePem();
  const other = await openStream({
    credential: fe,
    roots,
    node: { id: 'x', NAMESPACE: 'default', WORKLOAD_NAME: 'pay-1' },
  });
  assert.equal(other.code, grpc.status.PERMISSION_DENIED, show(other));
  assert.match(other.details!, /Workload default\/pay-1, which runs as service account "payments"/);
  const own = await openStream({
    credential: fe,
    roots,
    node: { id: 'y', NAMESPACE: 'default', WORKLOAD_NAME: 'fe-1' },
  });
  assert.equal(own.typeUrl, TypeUrl.Cluster, show(own));
});

test('a stream lives no longer than its credential: a join token expiring ends it UNAUTHENTICATED', async () => {
  const { token } = await createToken({ serviceAccount: 'envoy', ttlSeconds: 2 });
  // The roots of now: the rotation test before this one changed them.
  const stream = heldStream({ token, roots: await cp.identity.trustBundlePem() });
  try {
    const opened = Date.now();
    await stream.request({
      type_url: TypeUrl.Cluster,
      resource_names: [],
      node: { id: 'short', metadata: structFromJson({}) },
    });
    const err = await stream.ended;
    assert.equal(err.code, grpc.status.UNAUTHENTICATED);
    assert.match(err.details, /credential this stream was opened with has expired/);
    const lived = Date.now() - opened;
    assert.ok(lived < 10_000, `ended after ${lived} ms`);
  } finally {
    stream.close();
  }
});
