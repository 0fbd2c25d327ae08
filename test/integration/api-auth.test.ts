// Integration: who may call the control plane's API. The admin token (kept hashed, written 0600
// to the data dir), join tokens (only their first SVID, once), and workloads over mutual TLS
// with their SVIDs (only their own Workloads, under their own leases), against a real in-process
// control plane on loopback.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { bundlePins, createCsr, generateWorkloadKey, splitJoinToken } from '../../src/ca/index.js';
import { startControlPlane, type RunningControlPlane } from '../../src/control-plane/control-plane.js';
import { silentLogger } from '../../src/log.js';
import type { IdentityClient, JoinInfo } from '../../src/sidecar/identity-client.js';
import { apiFetch, registerControlPlane, runWeft, tempDir } from '../helpers/weft-process.js';
import { startedIdentity } from '../helpers/identity.js';

let cp: RunningControlPlane;
let dataDir: string;
let info: JoinInfo;
let admin: string;

before(async () => {
  dataDir = tempDir();
  cp = await startControlPlane({
    dataDir,
    apiAddr: '127.0.0.1:0',
    xdsAddr: '127.0.0.1:0',
    trustDomain: 'weft.local',
    logger: silentLogger(),
  });
  admin = readFileSync(cp.adminTokenPath!, 'utf8').trim();
  registerControlPlane(cp.apiUrl, admin);
  info = (await (await fetch(`${cp.apiUrl}/api/v1/info`)).json()) as JoinInfo;
});
after(() => cp.close());

const anonymous = { authorization: '' };
const json = { 'content-type': 'application/json' };

async function call(
  path: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: { code?: string; message?: string } & Record<string, unknown> }> {
  const res = await apiFetch(`${cp.apiUrl}${path}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: { ...json, ...init.headers },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  return { status: res.status, body: (await res.json()) as { code?: string; message?: string } };
}

async function newToken(serviceAccount: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await call('/api/v1/tokens', { body: { serviceAccount, ...extra } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.token as string;
}

function workload(name: string, serviceAccount: string, namespace = 'default'): object {
  return {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'Workload',
    metadata: { name, namespace, labels: { app: serviceAccount } },
    spec: { address: '127.0.0.1', ports: [{ name: 'http', port: 8080, protocol: 'HTTP' }], serviceAccount },
  };
}

async function workloadClient(serviceAccount: string): Promise<IdentityClient> {
  return startedIdentity(info, serviceAccount, await newToken(serviceAccount));
}

test('the admin token: written 0600 to the data dir, only its hash in the store', () => {
  assert.equal(statSync(cp.adminTokenPath!).mode & 0o777, 0o600);
  assert.match(admin, /^weft-admin-[A-Za-z0-9_-]{43}$/);
  for (const f of readdirSync(dataDir)) {
    if (f === 'admin-token') continue;
    const p = join(dataDir, f);
    if (statSync(p).isFile()) assert.ok(!readFileSync(p).includes(admin), `${f} holds the admin token`);
  }
});

test('without a credential only health, version and join info answer; the 401 says what to do', async () => {
  assert.equal((await call('/healthz', { headers: anonymous })).status, 200);
  assert.equal((await call('/version', { headers: anonymous })).status, 200);
  const i = await call('/api/v1/info', { headers: anonymous });
  assert.equal(i.status, 200);
  assert.match(String(i.body.trustBundle), /^-----BEGIN CERTIFICATE-----/);
  assert.equal(i.body.controlPlaneId, 'spiffe://weft.local/ns/weft-system/sa/weft-control-plane');
  for (const [path, body] of [
    ['/api/v1/resources/workloads', undefined],
    ['/api/v1/proxies', undefined],
    ['/api/v1/watch', undefined],
    ['/api/v1/apply', { documents: [workload('x', 'x')] }],
    ['/api/v1/leases', { ttlSeconds: 5 }],
    ['/api/v1/tokens', { serviceAccount: 'x' }],
  ] as const) {
    const r = await call(path, { headers: anonymous, ...(body ? { body } : {}) });
    assert.equal(r.status, 401, path);
    assert.equal(r.body.code, 'WEFT_E_UNAUTHENTICATED');
    assert.match(r.body.message!, /--admin-token TOKEN or the WEFT_ADMIN_TOKEN environment variable/);
  }
  const wrong = await call('/api/v1/resources/workloads', { headers: { authorization: 'Bearer nope' } });
  assert.equal(wrong.status, 401);
  assert.match(wrong.body.message!, /not the admin token/);
});

test('--open-reads lets anyone read, but not write', async () => {
  const open = await startControlPlane({
    dataDir: tempDir(),
    apiAddr: '127.0.0.1:0',
    xdsAddr: '127.0.0.1:0',
    trustDomain: 'weft.local',
    logger: silentLogger(),
    openReads: true,
  });
  try {
    const get = await fetch(`${open.apiUrl}/api/v1/resources/workloads`);
    assert.equal(get.status, 200);
    const put = await fetch(`${open.apiUrl}/api/v1/apply`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ documents: [workload('y', 'y')] }),
    });
    assert.equal(put.status, 401);
  } finally {
    await open.close();
  }
});

test('a join token buys one SVID for its identity; a bad CSR does not burn it; a replay is refused', async () => {
  const token = await newToken('pay');
  const key = await generateWorkloadKey();
  const asJoin = { authorization: `Bearer ${token}` };
  const garbage = await call('/api/v1/svids', { headers: asJoin, body: { csr: 'not a csr' } });
  assert.equal(garbage.status, 400);
  assert.equal(garbage.body.code, 'WEFT_E_CSR_MALFORMED');
  const foreign = await call('/api/v1/svids', {
    headers: asJoin,
    body: { csr: await createCsr(key, 'spiffe://weft.local/ns/default/sa/admin') },
  });
  assert.equal(foreign.status, 403);
  assert.equal(foreign.body.code, 'WEFT_E_CSR_WRONG_IDENTITY');
  const csr = await createCsr(key, 'spiffe://weft.local/ns/default/sa/pay');
  const ok = await call('/api/v1/svids', { headers: asJoin, body: { csr } });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(ok.body.spiffeId, 'spiffe://weft.local/ns/default/sa/pay');
  const replay = await call('/api/v1/svids', { headers: asJoin, body: { csr } });
  assert.equal(replay.status, 401);
  assert.equal(replay.body.code, 'WEFT_E_TOKEN_USED_UP');
  // A join token is good for nothing else.
  const apply = await call('/api/v1/apply', {
    headers: { authorization: `Bearer ${await newToken('pay')}` },
    body: { documents: [workload('pay-1', 'pay')] },
  });
  assert.equal(apply.status, 403);
  assert.equal(apply.body.code, 'WEFT_E_FORBIDDEN');
});

test('a join token is judged by its secret: with its CA pin, without it, or with a wrong one', async () => {
  const token = await newToken('pinned', { maxUses: 3 });
  const { secret, pin } = splitJoinToken(token);
  assert.match(pin ?? '', /^sha256-[A-Za-z0-9_-]{43}$/);
  const key = await generateWorkloadKey();
  const csr = await createCsr(key, 'spiffe://weft.local/ns/default/sa/pinned');
  for (const form of [token, secret, `${secret}.sha256-${'x'.repeat(43)}`]) {
    const r = await call('/api/v1/svids', { headers: { authorization: `Bearer ${form}` }, body: { csr } });
    assert.equal(
      r.status,
      200,
      `${form === token ? 'pinned' : form === secret ? 'no pin' : 'wrong pin'}: ${JSON.stringify(r.body)}`,
    );
    assert.equal(r.body.spiffeId, 'spiffe://weft.local/ns/default/sa/pinned');
  }
  const spent = await call('/api/v1/svids', {
    headers: { authorization: `Bearer ${secret}` },
    body: { csr },
  });
  assert.equal(spent.body.code, 'WEFT_E_TOKEN_USED_UP', 'the three forms spent the same three uses');
  // Revoked by its pinless form, the pinned one is revoked too.
  const other = await newToken('pinned');
  assert.equal(
    (await call('/api/v1/tokens/revoke', { body: { token: splitJoinToken(other).secret } })).status,
    200,
  );
  const r = await call('/api/v1/svids', { headers: { authorization: `Bearer ${other}` }, body: { csr } });
  assert.equal(r.body.code, 'WEFT_E_TOKEN_REVOKED');
});

test('a revoked or expired join token is refused', async () => {
  const revoked = await newToken('rev');
  assert.equal((await call('/api/v1/tokens/revoke', { body: { token: revoked } })).status, 200);
  const key = await generateWorkloadKey();
  const csr = await createCsr(key, 'spiffe://weft.local/ns/default/sa/rev');
  const r = await call('/api/v1/svids', { headers: { authorization: `Bearer ${revoked}` }, body: { csr } });
  assert.equal(r.body.code, 'WEFT_E_TOKEN_REVOKED');
  const expired = await newToken('rev', { ttlSeconds: 1 });
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const e = await call('/api/v1/svids', { headers: { authorization: `Bearer ${expired}` }, body: { csr } });
  assert.equal(e.body.code, 'WEFT_E_TOKEN_EXPIRED');
  const listed = await call('/api/v1/tokens');
  assert.ok(!JSON.stringify(listed.body).includes(revoked), 'list shows no secrets');
});

test('a workload over mTLS: its own Workloads under its own leases, nothing else', async () => {
  const fe = await workloadClient('fe');
  const be = await workloadClient('be');
  try {
    const lease = await fe.call('POST', '/api/v1/leases', { ttlSeconds: 10 });
    assert.equal(lease.status, 200);
    const id = (lease.json as { id: number }).id;
    const own = await fe.call('POST', `/api/v1/apply?lease=${id}`, { documents: [workload('fe-1', 'fe')] });
    assert.equal(own.status, 200, JSON.stringify(own.json));
    const code = (r: { json: unknown }): string | undefined => (r.json as { code?: string }).code;
    const other = await fe.call('POST', `/api/v1/apply?lease=${id}`, { documents: [workload('be-1', 'be')] });
    assert.equal(other.status, 403);
    assert.equal(code(other), 'WEFT_E_FORBIDDEN');
    const otherNs = await fe.call('POST', `/api/v1/apply?lease=${id}`, {
      documents: [workload('fe-2', 'fe', 'prod')],
    });
    assert.equal(otherNs.status, 403);
    const noLease = await fe.call('POST', '/api/v1/apply', { documents: [workload('fe-3', 'fe')] });
    assert.equal(noLease.status, 403);
    const service = await fe.call('POST', `/api/v1/apply?lease=${id}`, {
      documents: [
        { apiVersion: 'v1', kind: 'Service', metadata: { name: 'fe' }, spec: { ports: [{ port: 80 }] } },
      ],
    });
    assert.equal(service.status, 403);
    assert.equal(
      (await be.call('POST', `/api/v1/leases/${id}/keepalive`)).status,
      403,
      "someone else's lease",
    );
    assert.equal((await be.call('DELETE', `/api/v1/leases/${id}`)).status, 403);
    assert.equal((await fe.call('GET', '/api/v1/resources/workloads')).status, 403, 'not a reader');
    const del = await be.call('POST', '/api/v1/delete', { documents: [workload('fe-1', 'fe')] });
    assert.equal(del.status, 403);
    assert.equal((await fe.call('POST', `/api/v1/leases/${id}/keepalive`)).status, 200);
    assert.equal((await fe.call('DELETE', `/api/v1/leases/${id}`)).status, 200);
  } finally {
    fe.close();
    be.close();
  }
});

test('a workload renews with its SVID alone, for its own identity only', async () => {
  const fe = await workloadClient('fe');
  try {
    const key = await generateWorkloadKey();
    const renewed = await fe.call('POST', '/api/v1/svids', {
      csr: await createCsr(key, 'spiffe://weft.local/ns/default/sa/fe'),
    });
    assert.equal(renewed.status, 200);
    const other = await fe.call('POST', '/api/v1/svids', {
      csr: await createCsr(key, 'spiffe://weft.local/ns/default/sa/be'),
    });
    assert.equal(other.status, 403);
    assert.equal((other.json as { code: string }).code, 'WEFT_E_CSR_WRONG_IDENTITY');
  } finally {
    fe.close();
  }
});

test('the CLI: a 401 says how to pass the token; token create prints the token last; revoke works', async () => {
  const denied = await runWeft(['get', 'workloads'], { server: cp.apiUrl, adminToken: null });
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /--admin-token TOKEN or the WEFT_ADMIN_TOKEN environment variable/);
  const created = await runWeft(['token', 'create', '--service-account', 'cli', '--ttl', '1h'], {
    server: cp.apiUrl,
  });
  assert.equal(created.code, 0, created.stderr);
  const token = created.stdout.trim().split('\n').at(-1)!;
  // The whole token, its CA pin (of the root in the bundle) included, alone on the last line.
  assert.match(token, /^weft-jt-[A-Za-z0-9_-]{43}\.sha256-[A-Za-z0-9_-]{43}$/);
  const pin = splitJoinToken(token).pin!;
  assert.deepEqual(
    bundlePins(info.trustBundle).map((r) => r.pin),
    [pin],
  );
  assert.ok(created.stderr.includes(`pins the CA root ${pin}`), created.stderr);
  const listed = await runWeft(['token', 'list'], { server: cp.apiUrl });
  assert.match(listed.stdout, /default\s+cli\s+0\/1/);
  assert.ok(!listed.stdout.includes(splitJoinToken(token).secret));
  assert.ok(!listed.stdout.includes(pin));
  const revoked = await runWeft(['token', 'revoke', token], { server: cp.apiUrl });
  assert.equal(revoked.code, 0, revoked.stderr);
  const key = await generateWorkloadKey();
  const r = await call('/api/v1/svids', {
    headers: { authorization: `Bearer ${token}` },
    body: { csr: await createCsr(key, 'spiffe://weft.local/ns/default/sa/cli') },
  });
  assert.equal(r.body.code, 'WEFT_E_TOKEN_REVOKED');
});
