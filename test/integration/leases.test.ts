// Integration: registrations bound to leases, as sidecars use them. A Workload applied with a
// lease disappears (and leaves every proxy's endpoints) when the lease is revoked or expires;
// keepalives hold it; re-registering under a new lease moves the binding.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { RunningControlPlane } from '../../src/control-plane/control-plane.js';
import { eventually, startInProcessControlPlane, apiFetch } from '../helpers/weft-process.js';

let cp: RunningControlPlane;
before(async () => {
  cp = await startInProcessControlPlane();
});
after(() => cp.close());

async function call(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await apiFetch(`${cp.apiUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const workload = (name: string, address = '127.0.0.1'): object => ({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'Workload',
  metadata: { name, labels: { app: 'leased' } },
  spec: { address, ports: [{ name: 'http', port: 15006, protocol: 'HTTP' }] },
});

const exists = async (name: string): Promise<boolean> =>
  (await apiFetch(`${cp.apiUrl}/api/v1/resources/workloads/default/${name}`)).status === 200;

test('revoking the lease removes what was applied with it', async () => {
  const lease = await call('POST', '/api/v1/leases', { ttlSeconds: 30 });
  assert.equal(lease.status, 200);
  const id = lease.body.id as number;
  assert.equal(
    (await call('POST', `/api/v1/apply?lease=${id}`, { documents: [workload('w-revoke')] })).status,
    200,
  );
  assert.ok(await exists('w-revoke'));
  assert.equal((await call('DELETE', `/api/v1/leases/${id}`)).status, 200);
  assert.equal(await exists('w-revoke'), false);
  assert.equal((await call('POST', `/api/v1/leases/${id}/keepalive`)).status, 404);
});

test('an expired lease removes its workload; keepalives hold it', async () => {
  const held = (await call('POST', '/api/v1/leases', { ttlSeconds: 1 })).body.id as number;
  const dropped = (await call('POST', '/api/v1/leases', { ttlSeconds: 1 })).body.id as number;
  await call('POST', `/api/v1/apply?lease=${held}`, { documents: [workload('w-held')] });
  await call('POST', `/api/v1/apply?lease=${dropped}`, { documents: [workload('w-dropped')] });
  const timer = setInterval(() => void call('POST', `/api/v1/leases/${held}/keepalive`), 300);
  try {
    await eventually('the unkept lease to expire', async () => !(await exists('w-dropped')), 4000);
    assert.ok(await exists('w-held'), 'kept alive');
  } finally {
    clearInterval(timer);
  }
  await eventually(
    'the held lease to expire once keepalives stop',
    async () => !(await exists('w-held')),
    4000,
  );
});

test('re-registering under a new lease moves the binding: the old lease no longer removes it', async () => {
  const first = (await call('POST', '/api/v1/leases', { ttlSeconds: 30 })).body.id as number;
  const second = (await call('POST', '/api/v1/leases', { ttlSeconds: 30 })).body.id as number;
  await call('POST', `/api/v1/apply?lease=${first}`, { documents: [workload('w-moved')] });
  const again = await call('POST', `/api/v1/apply?lease=${second}`, { documents: [workload('w-moved')] });
  assert.deepEqual(
    (again.body.results as Array<{ action: string }>).map((r) => r.action),
    ['configured'],
    'same content, new lease: written',
  );
  await call('DELETE', `/api/v1/leases/${first}`);
  assert.ok(await exists('w-moved'));
  // A plain apply (no lease) keeps the binding: the object still goes with its lease.
  await call('POST', '/api/v1/apply', { documents: [workload('w-moved', '127.0.0.2')] });
  await call('DELETE', `/api/v1/leases/${second}`);
  assert.equal(await exists('w-moved'), false);
});

test('bad lease requests answer clearly', async () => {
  const bad = await call('POST', '/api/v1/leases', { ttlSeconds: 0 });
  assert.equal(bad.status, 422);
  assert.match(String(bad.body.message), /ttlSeconds must be an integer from 1 to 3600/);
  const gone = await call('POST', '/api/v1/apply?lease=999999', { documents: [workload('w-nolease')] });
  assert.equal(gone.status, 404);
  assert.equal(gone.body.code, 'WEFT_E_LEASE_NOT_FOUND');
  assert.equal(await exists('w-nolease'), false);
  assert.equal((await call('POST', '/api/v1/apply?lease=abc', { documents: [workload('w-x')] })).status, 400);
});
