// Integration: a sidecar's registration against a real in-process control plane, over the
// workload API with the sidecar's own SVID (got with a join token). Registered while running,
// gone at once on a clean stop, and registered again when its lease is lost.
// A second stop (a sidecar's close() after its graceful shutdown) asks nothing more.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { RunningControlPlane } from '../../src/control-plane/control-plane.js';
import { Registration } from '../../src/sidecar/registration.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { IdentityClient, type JoinInfo } from '../../src/sidecar/identity-client.js';
import { apiFetch, eventually, joinTokenFor, startInProcessControlPlane } from '../helpers/weft-process.js';

let cp: RunningControlPlane;
let identity: IdentityClient;
before(async () => {
  cp = await startInProcessControlPlane();
  const info = (await (await fetch(`${cp.apiUrl}/api/v1/info`)).json()) as JoinInfo;
  identity = new IdentityClient({
    info,
    namespace: 'default',
    serviceAccount: 'reg',
    token: await joinTokenFor(cp.apiUrl, 'reg'),
    logger: silentLogger(),
  });
  await identity.start();
});
after(async () => {
  identity.close();
  await cp.close();
});

const workload = {
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'Workload',
  metadata: { name: 'reg-1', labels: { app: 'reg' } },
  spec: {
    address: '127.0.0.1',
    ports: [{ name: 'http', port: 15006, protocol: 'HTTP' }],
    serviceAccount: 'reg',
  },
};
const exists = async (): Promise<boolean> =>
  (await apiFetch(`${cp.apiUrl}/api/v1/resources/workloads/default/reg-1`)).status === 200;
const call = (method: string, path: string, body?: unknown) => identity.call(method, path, body);

test('registered while running; a lost lease is replaced; a clean stop deregisters at once', async () => {
  const reg = new Registration({ call, workload, ttlSeconds: 1, logger: silentLogger() });
  await reg.start();
  try {
    assert.ok(await exists());
    const first = reg.leaseId;
    // Someone revokes the lease (or it expired during an outage): the workload goes, and the
    // next keepalive notices and registers again under a new lease.
    await apiFetch(`${cp.apiUrl}/api/v1/leases/${first}`, { method: 'DELETE' });
    assert.equal(await exists(), false);
    await eventually('registered again', async () => reg.leaseId !== first && (await exists()), 3000);
    // Keepalives hold it past several TTLs.
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(await exists(), 'kept alive');
  } finally {
    await reg.stop();
  }
  assert.equal(await exists(), false, 'deregistered on stop');
});

test('stop() while a keepalive is on the wire: nothing is registered after stop returns', async () => {
  // A slow network between sidecar and control plane: keepalives take 300 ms to arrive.
  let keepalives = 0;
  const slowCall = async (method: string, path: string, body?: unknown) => {
    if (path.endsWith('/keepalive')) {
      keepalives++;
      await new Promise((r) => setTimeout(r, 300));
    }
    return call(method, path, body);
  };
  const reg = new Registration({ call: slowCall, workload, ttlSeconds: 1, logger: silentLogger() });
  try {
    await reg.start();
    // Revoke behind its back, so the in-flight keepalive answers 404 (which used to re-register).
    await apiFetch(`${cp.apiUrl}/api/v1/leases/${reg.leaseId}`, { method: 'DELETE' });
    await eventually('a keepalive on the wire', async () => keepalives > 0, 3000);
    await reg.stop();
    const afterStop = Date.now();
    await eventually(
      'the slow keepalive answered and handled',
      async () => Date.now() - afterStop > 600,
      2000,
    );
    assert.equal(await exists(), false, 'registered again after stop()');
  } finally {
    await reg.stop();
  }
});

test('stopping twice (shutdown, then close) deregisters once and warns of nothing', async () => {
  const lines: string[] = [];
  const logger = createLogger('registration-test', { write: (l: string) => void lines.push(l) });
  logger.level = 'info';
  const deletes: number[] = [];
  const counting = async (method: string, path: string, body?: unknown) => {
    const res = await call(method, path, body);
    if (method === 'DELETE') deletes.push(res.status);
    return res;
  };
  const reg = new Registration({ call: counting, workload, ttlSeconds: 5, logger });
  await reg.start();
  await Promise.all([reg.stop(), reg.stop()]);
  await reg.stop();
  assert.equal(await exists(), false, 'deregistered');
  assert.deepEqual(deletes, [200], 'the lease is revoked once');
  const records = lines.map((l) => JSON.parse(l) as { level: number; msg: string });
  assert.deepEqual(
    records.filter((r) => r.level >= 40).map((r) => r.msg),
    [],
    'no warning on a clean stop',
  );
  assert.ok(records.some((r) => r.msg === 'workload deregistered'));
});

test('a lease already gone when the sidecar stops: said as such, not as a failure', async () => {
  const lines: string[] = [];
  const logger = createLogger('registration-test', { write: (l: string) => void lines.push(l) });
  logger.level = 'info';
  const reg = new Registration({ call, workload, ttlSeconds: 5, logger });
  await reg.start();
  // It expired during an outage, say, and the sidecar stops before a keepalive noticed.
  await apiFetch(`${cp.apiUrl}/api/v1/leases/${reg.leaseId}`, { method: 'DELETE' });
  await reg.stop();
  const records = lines.map((l) => JSON.parse(l) as { level: number; msg: string });
  assert.deepEqual(
    records.filter((r) => r.level >= 40).map((r) => r.msg),
    [],
  );
  assert.ok(
    records.some((r) => /already gone/.test(r.msg)),
    lines.join(''),
  );
});
