// End to end: a real `weft control-plane` process, real gRPC echo servers, and a gRPC client
// nobody here wrote (@grpc/grpc-js-xds) dialling `xds:///echo`. Proves discovery, weighted and
// header routing, endpoint removal, and survival of a control plane restart.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEchoServer, type EchoServer } from '../../src/demo/echo-server.js';
import { createEchoClient, type EchoClient } from '../../src/demo/proxyless-client.js';
import {
  eventually,
  freePort,
  runWeft,
  startControlPlane,
  tempDir,
  type ControlPlaneProcess,
  apiFetch,
} from '../helpers/weft-process.js';

let cp: ControlPlaneProcess;
let dataDir: string;
let files: string;
let v1: EchoServer;
let v2: EchoServer;
let client: EchoClient;

function workloads(): string {
  const w = (s: EchoServer, version: string): string => `
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: echo-${version}-0
  labels: {app: echo, version: ${version}}
spec:
  address: 127.0.0.1
  serviceAccount: echo
  ports: [{name: grpc, port: ${s.port}, protocol: GRPC}]
`;
  const svc = (version: string): string => `
apiVersion: v1
kind: Service
metadata: {name: echo-${version}}
spec:
  selector: {app: echo, version: ${version}}
  ports: [{name: grpc, port: 7070, targetPort: grpc, appProtocol: grpc}]
`;
  return [w(v1, 'v1'), w(v2, 'v2'), svc('v1'), svc('v2')].join('---');
}

/** The HTTPRoute `echo-split` on service echo, with the given `rules:` items (YAML). */
function echoRoute(rules: string): string {
  return `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo-split}
spec:
  parentRefs: [{kind: Service, name: echo}]
  rules:
${rules}`;
}

function route(w1: number, w2: number): string {
  return echoRoute(`
  - matches: [{headers: [{name: x-canary, value: "true"}]}]
    backendRefs: [{name: echo-v2}]
  - backendRefs: [{name: echo-v1, weight: ${w1}}, {name: echo-v2, weight: ${w2}}]
`);
}

async function apply(name: string, yaml: string): Promise<string> {
  const file = join(files, name);
  writeFileSync(file, yaml);
  const r = await runWeft(['apply', '-f', file], { server: cp.apiUrl });
  assert.equal(r.code, 0, `weft apply failed: ${r.stderr}`);
  return r.stdout;
}

async function tally(n: number, metadata: Record<string, string> = {}): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const res = await client.echo(`call ${i}`, metadata);
    counts[res.server] = (counts[res.server] ?? 0) + 1;
  }
  return counts;
}

/** Resolves once `n` consecutive calls all land on `server`; fails after `timeoutMs`. */
async function allCallsReach(server: string, timeoutMs: number, n = 10): Promise<number> {
  const started = Date.now();
  let streak = 0;
  await eventually(
    `${n} consecutive calls on ${server}`,
    async () => {
      const res = await client.echo('probe');
      streak = res.server === server ? streak + 1 : 0;
      return streak >= n;
    },
    timeoutMs,
  );
  return Date.now() - started;
}

before(async () => {
  dataDir = tempDir();
  files = tempDir();
  // Restarted on this xDS port later: one the kernel does not hand out meanwhile (see freePort).
  cp = await startControlPlane({ dataDir, xdsPlaintextPort: await freePort() });
  v1 = await startEchoServer({ name: 'echo-v1' });
  v2 = await startEchoServer({ name: 'echo-v2' });
  const out = await apply('workloads.yaml', workloads());
  assert.match(out, /^workload\/echo-v1-0 created$/m);
  assert.match(out, /^service\/echo-v2 created$/m);
  client = createEchoClient('xds:///echo', { xdsAddress: cp.xdsPlaintextAddress!, nodeId: 'e2e-client' });
});

after(async () => {
  client?.close();
  await v1?.close();
  await v2?.close();
  await cp?.stop();
});

test('a grpc-js-xds client on xds:///echo spreads 100 calls over both workloads', async () => {
  const counts = await tally(100);
  // Round robin over two endpoints: 50/50. Tolerance ±20 allows for the first picks made
  // before both endpoints were connected.
  assert.deepEqual(Object.keys(counts).sort(), ['echo-v1', 'echo-v2']);
  assert.ok(counts['echo-v1']! >= 30 && counts['echo-v2']! >= 30, `uneven spread: ${JSON.stringify(counts)}`);
});

test('HTTPRoute weights move traffic: 100/0 → all v1, then 0/100 → all v2 within 2 s', async () => {
  await apply('route.yaml', route(100, 0));
  await allCallsReach('echo-v1', 2000);
  assert.deepEqual(await tally(50), { 'echo-v1': 50 });

  await apply('route.yaml', route(0, 100));
  const ms = await allCallsReach('echo-v2', 2000);
  assert.ok(ms <= 2000, `took ${ms} ms`);
  assert.deepEqual(await tally(50), { 'echo-v2': 50 });
});

test('a header match routes only the matching calls', async () => {
  await apply('route.yaml', route(100, 0));
  await allCallsReach('echo-v1', 2000);
  assert.deepEqual(await tally(20, { 'x-canary': 'true' }), { 'echo-v2': 20 });
  assert.deepEqual(await tally(20, { 'x-canary': 'false' }), { 'echo-v1': 20 });
  assert.deepEqual(await tally(20), { 'echo-v1': 20 });
});

test('deleting a Workload removes it from the client endpoints within 2 s', async () => {
  const del = await runWeft(['delete', 'route', 'echo-split'], { server: cp.apiUrl });
  assert.equal(del.code, 1, 'no kind named "route": must fail');
  assert.match(del.stderr, /httproutes|HTTPRoute/);
  const ok = await runWeft(['delete', 'httproute', 'echo-split'], { server: cp.apiUrl });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout.trim(), 'httproute/echo-split deleted');
  const spread = await eventually('calls on both workloads again', async () => {
    const c = await tally(10);
    return Object.keys(c).length === 2 ? c : undefined;
  });
  assert.ok(spread);

  const r = await runWeft(['delete', 'workload', 'echo-v2-0'], { server: cp.apiUrl });
  assert.equal(r.code, 0, r.stderr);
  const ms = await allCallsReach('echo-v1', 2000, 20);
  assert.ok(ms <= 2000);
  await apply('workloads.yaml', workloads());
});

test('a control plane restart keeps every resource; the client keeps working while it is down', async () => {
  await apply('route.yaml', route(100, 0));
  await allCallsReach('echo-v1', 2000);
  const before = await runWeft(['get', 'httproute', 'echo-split', '-o', 'json'], { server: cp.apiUrl });
  assert.equal(before.code, 0, before.stderr);
  const xdsPlaintextPort = cp.xdsPlaintextPort;

  await cp.kill();
  // Down: the client serves from the config it has.
  assert.deepEqual(await tally(30), { 'echo-v1': 30 });

  cp = await startControlPlane({ dataDir, xdsPlaintextPort });
  const afterGet = await runWeft(['get', 'httproute', 'echo-split', '-o', 'json'], { server: cp.apiUrl });
  assert.equal(afterGet.code, 0, afterGet.stderr);
  assert.deepEqual(JSON.parse(afterGet.stdout), JSON.parse(before.stdout));
  const list = await runWeft(['get', 'workloads'], { server: cp.apiUrl });
  assert.match(list.stdout, /echo-v1-0/);
  assert.match(list.stdout, /echo-v2-0/);

  // Resynced: a change made after the restart reaches the client.
  await apply('route.yaml', route(0, 100));
  await allCallsReach('echo-v2', 5000);
});

test('xds:///<service>:<port> and namespaced names reach the service on that port', async () => {
  for (const target of ['xds:///echo-v1:7070', 'xds:///echo-v2.default:7070', 'xds:///echo-v1.default.svc']) {
    const c = createEchoClient(target, { xdsAddress: cp.xdsPlaintextAddress!, nodeId: `e2e-${target}` });
    try {
      const res = await c.echo('hello');
      assert.equal(res.server, target.includes('v1') ? 'echo-v1' : 'echo-v2', target);
    } finally {
      c.close();
    }
  }
});

test('a regex path matches the whole path, also for grpc-js-xds (alternation cannot escape anchors)', async () => {
  // Unanchored by the client, `/…/Ech|/nothing` would match the prefix of `/…/Echo` and send
  // every call to v2. Matched whole, it matches nothing here and the catch-all rule wins.
  await apply(
    'route.yaml',
    echoRoute(`
  - matches: [{path: {type: RegularExpression, value: '/weft\\.demo\\.v1\\.Echo/Ech|/nothing'}}]
    backendRefs: [{name: echo-v2}]
  - matches: [{path: {type: RegularExpression, value: '/weft\\.demo\\.v1\\.Echo/(Nope|Echo)'}}]
    backendRefs: [{name: echo-v1}]
`),
  );
  await allCallsReach('echo-v1', 2000);
  assert.deepEqual(await tally(20), { 'echo-v1': 20 });
});

test('a route holding a RequestRedirect still works for proxyless gRPC (which rejects redirects)', async () => {
  await apply(
    'route.yaml',
    echoRoute(`
  - matches: [{path: {type: PathPrefix, value: /moved}}]
    filters: [{type: RequestRedirect, requestRedirect: {hostname: elsewhere.example, statusCode: 301}}]
  - backendRefs: [{name: echo-v2}]
`),
  );
  await allCallsReach('echo-v2', 2000);
  const proxies = (await (await apiFetch(`${cp.apiUrl}/api/v1/proxies`)).json()) as {
    items: Array<{ node: { id: string }; types: Record<string, { lastNack?: { message: string } }> }>;
  };
  const me = proxies.items.find((p) => p.node.id === 'e2e-client');
  assert.ok(me);
  assert.deepEqual(
    Object.values(me.types).flatMap((t) => (t.lastNack ? [t.lastNack.message] : [])),
    [],
    'grpc-js-xds NACKed something',
  );
});
