// Integration: a sidecar's registration against a real in-process control plane. Registered
// while running, gone at once on a clean stop, and registered again when its lease is lost.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { RunningControlPlane } from '../../src/control-plane/control-plane.js';
import { Registration } from '../../src/sidecar/registration.js';
import { silentLogger } from '../../src/log.js';
import { eventually, startInProcessControlPlane } from '../helpers/weft-process.js';

let cp: RunningControlPlane;
before(async () => {
  cp = await startInProcessControlPlane();
});
after(() => cp.close());

const workload = {
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'Workload',
  metadata: { name: 'reg-1', labels: { app: 'reg' } },
  spec: { address: '127.0.0.1', ports: [{ name: 'http', port: 15006, protocol: 'HTTP' }] },
};
const exists = async (): Promise<boolean> =>
  (await fetch(`${cp.apiUrl}/api/v1/resources/workloads/default/reg-1`)).status === 200;

test('registered while running; a lost lease is replaced; a clean stop deregisters at once', async () => {
  const reg = new Registration({ controlPlane: cp.apiUrl, workload, ttlSeconds: 1, logger: silentLogger() });
  await reg.start();
  try {
    assert.ok(await exists());
    const first = reg.leaseId;
    // Someone revokes the lease (or it expired during an outage): the workload goes, and the
    // next keepalive notices and registers again under a new lease.
    await fetch(`${cp.apiUrl}/api/v1/leases/${first}`, { method: 'DELETE' });
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
  const { createServer, request } = await import('node:http');
  const target = new URL(cp.apiUrl);
  let keepalives = 0;
  const slow = createServer((req, res) => {
    const forward = (): void => {
      const up = request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      req.pipe(up);
    };
    if (req.url?.endsWith('/keepalive')) {
      keepalives++;
      setTimeout(forward, 300);
    } else {
      forward();
    }
  });
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(slow.address() as { port: number }).port}`;
  const reg = new Registration({ controlPlane: url, workload, ttlSeconds: 1, logger: silentLogger() });
  try {
    await reg.start();
    // Revoke behind its back, so the in-flight keepalive answers 404 (which used to re-register).
    await fetch(`${cp.apiUrl}/api/v1/leases/${reg.leaseId}`, { method: 'DELETE' });
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
    slow.close();
  }
});
