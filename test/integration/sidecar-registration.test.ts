// Integration: a sidecar's registration against a real in-process control plane, over the
// workload API with the sidecar's own SVID (got with a join token). Registered while running,
// gone at once on a clean stop, and registered again when its lease is lost.
// A second stop (a sidecar's close() after its graceful shutdown) asks nothing more. Stopped
// while it waits to retry an unreachable control plane, or while its registration is on the
// way, it is not registered. Its calls share a kept-open connection to the workload API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import type { RunningControlPlane } from '../../src/control-plane/control-plane.js';
import { Registration, type RegistrationOptions } from '../../src/sidecar/registration.js';
import { createLogger, silentLogger, type Logger } from '../../src/log.js';
import { IdentityClient, type JoinInfo } from '../../src/sidecar/identity-client.js';
import { WeftError } from '../../src/errors.js';
import { apiFetch, eventually, joinTokenFor, startInProcessControlPlane } from '../helpers/weft-process.js';
import { tcpRelay, type TcpRelay } from '../helpers/tcp-relay.js';

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

/**
 * A control plane that cannot be reached: a listener that resets every connection, so every
 * registration attempt fails at once, and the waits between attempts double (200, 400, 800,
 * 1,600 ms, then 3,200 ms). `waiting` resolves once `n` attempts have failed and the
 * registration has begun to wait before the next (it logs the failure just before waiting).
 */
async function unreachableControlPlane(n: number): Promise<{
  call: RegistrationOptions['call'];
  logger: Logger;
  attempts: () => number;
  waiting: Promise<void>;
  close(): Promise<void>;
}> {
  const refusing = createServer((s) => s.resetAndDestroy());
  await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', () => r()));
  const port = (refusing.address() as AddressInfo).port;
  let attempts = 0;
  let failures = 0;
  let reach: () => void;
  const waiting = new Promise<void>((r) => (reach = r));
  const logger = createLogger('registration-test', {
    write: (line: string) => {
      if (/retrying/.test(line) && ++failures === n) reach();
    },
  });
  logger.level = 'warn';
  const call = async (method: string, path: string) => {
    attempts++;
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
    return { status: res.status, json: await res.json() };
  };
  return {
    call,
    logger,
    attempts: () => attempts,
    waiting,
    close: () => new Promise<void>((r) => refusing.close(() => r())),
  };
}

/** What start() settled with: 'resolved', or the error it rejected with. */
const settled = (p: Promise<void>): Promise<'resolved' | WeftError> =>
  p.then(
    () => 'resolved' as const,
    (e: unknown) => e as WeftError,
  );

test('stopped while waiting to retry: start() rejects at once, and nothing was registered', async () => {
  const cpDown = await unreachableControlPlane(5);
  const reg = new Registration({ call: cpDown.call, workload, ttlSeconds: 5, logger: cpDown.logger });
  try {
    const outcome = settled(reg.start());
    // Five attempts failed; it now waits 3,200 ms before the sixth.
    await cpDown.waiting;
    const stoppedAt = Date.now();
    await reg.stop();
    const result = await outcome;
    const tookMs = Date.now() - stoppedAt;
    assert.ok(result instanceof WeftError, `start() must reject when stopped, got ${String(result)}`);
    assert.equal(result.code, 'WEFT_E_UNAVAILABLE');
    assert.match(result.message, /stopped before the workload was registered/);
    // It did not sit out the wait (1.5 s of its 3.2 s allows for a slow machine).
    assert.ok(tookMs < 1500, `start() rejected ${tookMs} ms after stop()`);
    assert.equal(cpDown.attempts(), 5, 'no attempt after stop()');
    assert.equal(reg.leaseId, 0);
  } finally {
    await reg.stop();
    await cpDown.close();
  }
});

test('a signal aborted while waiting to retry ends start() the same way', async () => {
  const cpDown = await unreachableControlPlane(3);
  const reg = new Registration({ call: cpDown.call, workload, ttlSeconds: 5, logger: cpDown.logger });
  try {
    const abort = new AbortController();
    const outcome = settled(reg.start(abort.signal));
    // Three attempts failed; it now waits 800 ms before the fourth.
    await cpDown.waiting;
    const abortedAt = Date.now();
    abort.abort();
    const result = await outcome;
    assert.ok(result instanceof WeftError, `start() must reject when aborted, got ${String(result)}`);
    assert.equal(result.code, 'WEFT_E_UNAVAILABLE');
    assert.ok(Date.now() - abortedAt < 400, 'it did not sit out the wait');
    assert.equal(cpDown.attempts(), 3, 'no attempt after the abort');
  } finally {
    await reg.stop();
    await cpDown.close();
  }
});

test('stopped while a registration that then succeeds is on its way: not registered, lease revoked', async () => {
  // The Workload's apply is held on its way to the control plane until the test lets it go.
  let held: () => void;
  const applyHeld = new Promise<void>((r) => (held = r));
  let release: () => void;
  const released = new Promise<void>((r) => (release = r));
  const holding = async (method: string, path: string, body?: unknown) => {
    if (path.startsWith('/api/v1/apply')) {
      held();
      await released;
    }
    return call(method, path, body);
  };
  const reg = new Registration({ call: holding, workload, ttlSeconds: 5, logger: silentLogger() });
  const outcome = settled(reg.start());
  await applyHeld;
  const stopped = reg.stop();
  release!();
  const result = await outcome;
  await stopped;
  assert.ok(result instanceof WeftError, `start() must reject when stopped, got ${String(result)}`);
  assert.equal(result.code, 'WEFT_E_UNAVAILABLE');
  assert.equal(await exists(), false, 'the lease it got as it stopped is revoked, the Workload with it');
});

/** An identity (SVID obtained) whose calls to the workload API go through a relay. */
async function identityThroughRelay(): Promise<{
  relay: TcpRelay;
  id: IdentityClient;
}> {
  const info = (await (await fetch(`${cp.apiUrl}/api/v1/info`)).json()) as JoinInfo;
  const relay = await tcpRelay(new URL(info.workloadApi));
  const id = new IdentityClient({
    info: { ...info, workloadApi: relay.url },
    namespace: 'default',
    serviceAccount: 'reg',
    token: await joinTokenFor(cp.apiUrl, 'reg'),
    logger: silentLogger(),
  });
  try {
    await id.start();
  } catch (e) {
    id.close();
    await relay.close();
    throw e;
  }
  return { relay, id };
}

test('lease calls share one kept-open connection to the workload API, not a handshake each', async () => {
  const { relay, id } = await identityThroughRelay();
  try {
    const before = relay.connections;
    let keepalives = 0;
    let third: () => void;
    const thirdKeepalive = new Promise<void>((r) => (third = r));
    const counting = async (method: string, path: string, body?: unknown) => {
      const res = await id.call(method, path, body);
      if (path.endsWith('/keepalive') && ++keepalives === 3) third();
      return res;
    };
    // TTL 1 s: a keepalive every 333 ms, inside the 4 s a connection is kept idle.
    const reg = new Registration({ call: counting, workload, ttlSeconds: 1, logger: silentLogger() });
    try {
      await reg.start();
      await thirdKeepalive;
    } finally {
      await reg.stop();
    }
    // Lease, apply, three keepalives and the revocation: six calls on one connection.
    assert.equal(relay.connections - before, 1, `${relay.connections - before} connections for six calls`);
  } finally {
    id.close();
    await relay.close();
  }
});

test('a kept-open connection cut as a request goes out: the request is sent again on a new one', async () => {
  const { relay, id } = await identityThroughRelay();
  try {
    const lease = await id.call('POST', '/api/v1/leases', { ttlSeconds: 5 });
    assert.equal(lease.status, 200);
    const before = relay.connections;
    relay.cutNextReuse = true;
    const res = await id.call('POST', `/api/v1/leases/${(lease.json as { id: number }).id}/keepalive`);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(relay.cutNextReuse, false, 'the kept connection was reused, and cut');
    assert.equal(relay.connections - before, 1, 'the retry went out on a new connection');
    await id.call('DELETE', `/api/v1/leases/${(lease.json as { id: number }).id}`);
  } finally {
    id.close();
    await relay.close();
  }
});
