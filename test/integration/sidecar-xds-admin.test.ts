// The sidecar admin server over real HTTP, with the agent and the proxy's functions injected:
// readiness needs both a complete xDS config and a healthy app; config dump, clusters and drain
// pass through what they are given.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { AdminServer } from '../../src/sidecar/admin-server.js';
import type { Readiness } from '../../src/sidecar/xds-agent.js';

let readiness: Readiness = { ready: false, reason: 'waiting for Listeners (LDS)' };
let appHealthy: () => boolean | Promise<boolean> = () => true;
let drains = 0;
let draining = false;
const dump = {
  listeners: { version: '7', resources: { outbound: { name: 'outbound' } } },
  lastNack: { message: 'x' },
};
const stats = [{ name: 'c', endpoints: [{ host: '10.0.0.1', port: 80, healthy: true, active: 2 }] }];

const admin = new AdminServer({
  agent: { readiness: () => readiness, configDump: () => dump },
  appHealthy: () => appHealthy(),
  clusterStats: () => stats,
  drain: () => {
    drains++;
  },
  appCheckTimeoutMs: 100,
  draining: () => draining,
});
let base: string;

before(async () => {
  const { host, port } = await admin.listen('127.0.0.1', 0);
  base = `http://${host}:${port}`;
});

after(async () => {
  await admin.close();
});

async function get(
  path: string,
  init?: RequestInit,
): Promise<{ status: number; body: string; res: Response }> {
  const res = await fetch(base + path, init);
  return { status: res.status, body: await res.text(), res };
}

test('/ready: 503 with the reason until the xDS config is complete', async () => {
  readiness = { ready: false, reason: 'waiting for route configs outbound' };
  assert.deepEqual(await get('/ready').then((r) => [r.status, r.body]), [
    503,
    'not ready: waiting for route configs outbound\n',
  ]);
});

test('/ready: 503 while the app is unhealthy, fails its check, or does not answer; 200 when all is well', async () => {
  readiness = { ready: true };
  appHealthy = () => false;
  assert.deepEqual(await get('/ready').then((r) => [r.status, r.body]), [
    503,
    'not ready: app is not healthy\n',
  ]);
  appHealthy = () => Promise.reject(new Error('connection refused'));
  assert.deepEqual(await get('/ready').then((r) => [r.status, r.body]), [
    503,
    'not ready: app health check failed: connection refused\n',
  ]);
  appHealthy = () => new Promise<boolean>(() => {});
  assert.deepEqual(await get('/ready').then((r) => [r.status, r.body]), [
    503,
    'not ready: app health check did not answer within 100 ms\n',
  ]);
  appHealthy = async () => true;
  assert.deepEqual(await get('/ready').then((r) => [r.status, r.body]), [200, 'ready\n']);
  assert.equal((await get('/ready', { method: 'HEAD' })).status, 200);
});

test('/config_dump and /clusters answer with the injected JSON', async () => {
  const d = await get('/config_dump');
  assert.equal(d.status, 200);
  assert.match(d.res.headers.get('content-type') ?? '', /application\/json/);
  assert.deepEqual(JSON.parse(d.body), dump);
  const c = await get('/clusters');
  assert.deepEqual(JSON.parse(c.body), stats);
});

test('POST /drain starts a drain and answers 202; other methods and paths are refused', async () => {
  const before = drains;
  assert.equal((await get('/drain', { method: 'POST' })).status, 202);
  assert.equal(drains, before + 1);
  const wrong = await get('/drain');
  assert.equal(wrong.status, 405);
  assert.equal(wrong.res.headers.get('allow'), 'POST');
  assert.equal((await get('/ready', { method: 'POST' })).status, 405);
  const missing = await get('/metrics');
  assert.equal(missing.status, 404);
  assert.match(missing.body, /try \/ready/);
});

test('a failing drain is logged, not surfaced: the answer is still 202', async () => {
  const failing = new AdminServer({
    agent: { readiness: () => ({ ready: true }), configDump: () => ({}) },
    appHealthy: () => true,
    clusterStats: () => {
      throw new Error('proxy not started');
    },
    drain: () => Promise.reject(new Error('already draining')),
  });
  const { host, port } = await failing.listen('127.0.0.1', 0);
  try {
    assert.equal((await fetch(`http://${host}:${port}/drain`, { method: 'POST' })).status, 202);
    const c = await fetch(`http://${host}:${port}/clusters`);
    assert.equal(c.status, 500);
    assert.equal(await c.text(), 'internal error: proxy not started\n');
  } finally {
    await failing.close();
  }
});

test('/ready: 503 once draining, even with a complete config and a healthy app', async () => {
  readiness = { ready: true };
  appHealthy = () => true;
  assert.equal((await get('/ready')).status, 200);
  draining = true;
  try {
    assert.deepEqual(await get('/ready').then((r) => [r.status, r.body]), [
      503,
      'not ready: draining (shutting down)\n',
    ]);
  } finally {
    draining = false;
  }
});
