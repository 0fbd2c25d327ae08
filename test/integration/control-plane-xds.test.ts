// Integration: an in-process control plane (real file store, real gRPC, real HTTP) and Weft's own
// ADS client standing in for proxies, on the plaintext xDS port (the TLS port's authentication
// has its own test, control-plane-xds-auth). Covers what the proxyless end-to-end test cannot see:
// NACKs reported through the API and the CLI, pushes only for changed resources, per-namespace
// names, and the watch stream.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { RunningControlPlane } from '../../src/control-plane/control-plane.js';
import { AdsClient, type ResponseEvent } from '../../src/xds/ads-client.js';
import { TypeUrl } from '../../src/xds/types.js';
import {
  eventually,
  registerControlPlane,
  runWeft,
  startInProcessControlPlane,
  tempDir,
  apiFetch,
} from '../helpers/weft-process.js';
import { startControlPlane as startRunningControlPlane } from '../../src/control-plane/control-plane.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { silentLogger } from '../../src/log.js';

let cp: RunningControlPlane;
const clients: AdsClient[] = [];

function workload(name: string, app: string, port: number, namespace = 'default'): object {
  return {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'Workload',
    metadata: { name, namespace, labels: { app } },
    spec: { address: '127.0.0.1', ports: [{ name: 'grpc', port, protocol: 'GRPC' }] },
  };
}

async function apply(documents: object[]): Promise<void> {
  const res = await apiFetch(`${cp.apiUrl}/api/v1/apply`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ documents }),
  });
  assert.equal(res.status, 200, await res.text());
}

function client(
  id: string,
  subscriptions: ConstructorParameters<typeof AdsClient>[0]['subscriptions'],
  extra: Partial<ConstructorParameters<typeof AdsClient>[0]> = {},
): AdsClient {
  const c = new AdsClient({
    address: cp.xdsPlaintextAddress!,
    node: { id, metadata: { NAMESPACE: 'default' } },
    subscriptions,
    ...extra,
  });
  clients.push(c);
  c.start();
  return c;
}

before(async () => {
  cp = await startInProcessControlPlane({ plaintextXds: true });
  await apply([workload('a-1', 'a', 9001), workload('b-1', 'b', 9002), workload('c-1', 'c', 9003, 'team-c')]);
});

after(async () => {
  for (const c of clients) c.close();
  await cp.close();
});

test("a NACK is visible through the API and `weft proxies` with the proxy's message", async () => {
  const c = client(
    'nacker',
    { [TypeUrl.Listener]: ['a'] },
    {
      apply: (u) =>
        u.typeUrl === TypeUrl.Listener ? 'listener a: field frobnicate is not supported' : undefined,
    },
  );
  await once(c, 'nack');
  type Proxies = {
    items: Array<{ node: { id: string }; types: Record<string, { lastNack?: { message: string } }> }>;
  };
  // The client fires 'nack' as it sends; the server records it when it arrives.
  const nack = await eventually('the NACK recorded by the control plane', async () => {
    const body = (await (await apiFetch(`${cp.apiUrl}/api/v1/proxies`)).json()) as Proxies;
    return body.items.find((p) => p.node.id === 'nacker')?.types[TypeUrl.Listener]?.lastNack;
  });
  assert.equal(nack.message, 'listener a: field frobnicate is not supported');
  const cli = await runWeft(['proxies'], { server: cp.apiUrl });
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(
    cli.stdout,
    /^nacker\s+127\.0\.0\.1:\d+\s+.*Listener: listener a: field frobnicate is not supported$/m,
  );
});

test('only changed resources are pushed: a change to service b sends nothing to a client of service a', async () => {
  const sub = {
    [TypeUrl.Listener]: ['a'],
    [TypeUrl.RouteConfiguration]: ['a.default:9001'],
    [TypeUrl.Cluster]: ['outbound|grpc||a.default'],
    [TypeUrl.ClusterLoadAssignment]: ['outbound|grpc||a.default'],
  };
  const c = client('watcher-a', sub);
  await eventually('initial state for a', async () =>
    Object.keys(sub).every((t) => c.version(t as TypeUrl) !== ''),
  );
  const responses: ResponseEvent[] = [];
  c.on('response', (r) => responses.push(r));

  // Something about b only: no response at all for a's client.
  await apply([workload('b-2', 'b', 9012)]);
  const probe = client('probe-b', { [TypeUrl.ClusterLoadAssignment]: ['outbound|grpc||b.default'] });
  await eventually('b has two endpoints', async () => {
    const cla = probe.resources(TypeUrl.ClusterLoadAssignment).get('outbound|grpc||b.default') as
      { endpoints?: Array<{ lb_endpoints?: unknown[] }> } | undefined;
    return cla?.endpoints?.[0]?.lb_endpoints?.length === 2;
  });
  // The listener and cluster lists (full-state types) are unaffected too: nothing was sent.
  assert.equal(responses.length, 0, `unexpected pushes: ${JSON.stringify(responses)}`);

  // A second instance of a: exactly the endpoint assignment changes, nothing else.
  const a2 = workload('a-2', 'a', 9001) as { spec: { address: string } };
  a2.spec.address = '127.0.0.2';
  await apply([a2]);
  await eventually('a response for a', async () => responses.length > 0);
  await eventually('a has two endpoints', async () => {
    const cla = c.resources(TypeUrl.ClusterLoadAssignment).get('outbound|grpc||a.default') as
      { endpoints?: Array<{ lb_endpoints?: unknown[] }> } | undefined;
    return cla?.endpoints?.[0]?.lb_endpoints?.length === 2;
  });
  assert.deepEqual(
    [...new Set(responses.map((r) => r.typeUrl))],
    [TypeUrl.ClusterLoadAssignment],
    `unexpected pushes: ${JSON.stringify(responses)}`,
  );
});

test("short names resolve in the proxy's own namespace", async () => {
  const inC = new AdsClient({
    address: cp.xdsPlaintextAddress!,
    node: { id: 'team-c-proxy', metadata: { NAMESPACE: 'team-c' } },
    subscriptions: { [TypeUrl.Listener]: ['c', 'a', 'a.default'] },
  });
  clients.push(inC);
  inC.start();
  await eventually('listeners for team-c', async () => inC.resources(TypeUrl.Listener).size === 2);
  assert.deepEqual([...inC.resources(TypeUrl.Listener).keys()].sort(), ['a.default', 'c']);
});

test('the watch API replays from a past revision, then streams live changes, as NDJSON', async () => {
  const start = (await (await apiFetch(`${cp.apiUrl}/api/v1/resources/workloads`)).json()) as {
    revision: number;
  };
  // A change made before the watch starts: only replay from history can deliver it.
  await apply([workload('w-past', 'watch', 9101)]);
  const ac = new AbortController();
  const res = await apiFetch(`${cp.apiUrl}/api/v1/watch?kind=workloads&fromRevision=${start.revision + 1}`, {
    signal: ac.signal,
  });
  assert.equal(res.status, 200);
  await apply([workload('w-watch', 'watch', 9100)]);
  const del = await apiFetch(`${cp.apiUrl}/api/v1/resources/workloads/default/w-watch`, { method: 'DELETE' });
  assert.equal(del.status, 200);
  const reader = res.body!.getReader();
  let text = '';
  while ((text.match(/\n/g) ?? []).length < 3) {
    const { value, done } = await reader.read();
    if (done) break;
    text += Buffer.from(value).toString('utf8');
  }
  ac.abort();
  const events = text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; object: { metadata: { name: string } } });
  assert.deepEqual(
    events.map((e) => [e.type, e.object.metadata.name]),
    [
      ['ADDED', 'w-past'],
      ['ADDED', 'w-watch'],
      ['DELETED', 'w-watch'],
    ],
  );
});

test('watch from a revision no longer in history is a 410 before any stream starts', async () => {
  const small = await startRunningControlPlane({
    dataDir: tempDir(),
    apiAddr: '127.0.0.1:0',
    xdsAddr: '127.0.0.1:0',
    trustDomain: 'weft.local',
    logger: silentLogger(),
    store: new MemoryStore({ limits: { eventLogRevisions: 3 } }),
  });
  registerControlPlane(small.apiUrl, small.adminToken!);
  try {
    for (let i = 0; i < 6; i++) {
      const r = await apiFetch(`${small.apiUrl}/api/v1/apply`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ documents: [workload(`h-${i}`, 'h', 9200 + i)] }),
      });
      assert.equal(r.status, 200);
    }
    const res = await apiFetch(`${small.apiUrl}/api/v1/watch?fromRevision=1`);
    assert.equal(res.status, 410);
    assert.equal(((await res.json()) as { code: string }).code, 'WEFT_E_COMPACTED');
  } finally {
    await small.close();
  }
});
