// End to end: the reference topology, every app a real process started by `weft run` with its
// sidecar, against a real control plane:
//
//     tester ─▶ fe ─┬─▶ be1 (two instances) ─┬─▶ be2
//                   │                        └─▶ be3
//                   └─▶ be4
//
// It proves the call tree, load sharing, surviving a control plane outage with zero failed
// requests, a graceful SIGTERM under load with zero failed requests, a SIGKILLed sidecar's
// endpoint leaving the other proxies within the lease, and `weft run`'s ordering and exit codes.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WEFT_BIN } from '../helpers/paths.js';
import {
  eventually,
  freePort,
  joinTokenFor,
  getViaProxy,
  runWeft,
  startControlPlane,
  startMeshProcess,
  tempDir,
  type ControlPlaneProcess,
  type MeshProcess,
} from '../helpers/weft-process.js';
import type { TreeNode } from '../../src/demo/tree-app.js';

const LEASE_TTL_S = 2;
let cp: ControlPlaneProcess;
let dataDir: string;
let tester: MeshProcess;
const apps = new Map<string, MeshProcess>();
/** The be1 instance the SIGTERM test restarted, which the SIGKILL test then kills. */
let lastRestarted = 'be1-1';

async function startApp(service: string, instance: string, calls: string[]): Promise<MeshProcess> {
  const port = await freePort();
  const p = await startMeshProcess({
    service,
    controlPlane: cp.apiUrl,
    appPort: port,
    extra: ['--lease-ttl', String(LEASE_TTL_S), '--name', instance, '--drain-timeout', '5'],
    command: [
      process.execPath,
      WEFT_BIN,
      'demo-app',
      '--service',
      service,
      '--instance',
      instance,
      '--port',
      String(port),
      '--calls',
      calls.join(','),
    ],
  });
  apps.set(instance, p);
  return p;
}

async function callFe(): Promise<{ status: number; tree?: TreeNode; body: string }> {
  const r = await getViaProxy(tester.outbound, 'fe');
  return r.status === 200 ? { ...r, tree: JSON.parse(r.body) as TreeNode } : r;
}

/** Service names of the tree, depth first, e.g. fe(be1(be2,be3),be4). */
function shape(n: TreeNode | { service: string; error: string }): string {
  if ('error' in n) return `${n.service}!`;
  return n.calls.length === 0 ? n.service : `${n.service}(${n.calls.map(shape).join(',')})`;
}

const FULL_TREE = 'fe(be1(be2,be3),be4)';

/** Sends requests to fe with `concurrency` loops until stopped; counts answers by status. */
function steadyTraffic(concurrency = 3): { stop: () => Promise<{ ok: number; failed: string[] }> } {
  let running = true;
  let ok = 0;
  const failed: string[] = [];
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      try {
        const r = await callFe();
        if (r.status === 200 && r.tree && shape(r.tree) === FULL_TREE) ok++;
        else failed.push(`${r.status} ${r.body.slice(0, 200)}`);
      } catch (e) {
        failed.push((e as Error).message);
      }
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return { ok, failed };
    },
  };
}

before(async () => {
  dataDir = tempDir();
  // The control plane restarts on these ports later: ones the kernel does not hand out
  // meanwhile to another socket (see freePort).
  cp = await startControlPlane({ dataDir, apiPort: await freePort(), xdsPort: await freePort() });
  // Leaves first: by the time fe is ready, what it calls is registered.
  await Promise.all([
    startApp('be2', 'be2-0', []),
    startApp('be3', 'be3-0', []),
    startApp('be4', 'be4-0', []),
  ]);
  await Promise.all([startApp('be1', 'be1-0', ['be2', 'be3']), startApp('be1', 'be1-1', ['be2', 'be3'])]);
  await startApp('fe', 'fe-0', ['be1', 'be4']);
  tester = await startMeshProcess({ service: 'tester', controlPlane: cp.apiUrl });
  await eventually(
    'the whole tree answering through the mesh',
    async () => {
      const r = await callFe();
      if (r.tree && shape(r.tree) === FULL_TREE) return true;
      // Thrown, so a timeout names the last answer.
      throw new Error(`${r.status} ${r.body.slice(0, 600)}`);
    },
    15_000,
  ).catch((e: Error) => {
    // What each process said (warnings and errors, the apps' too) goes with the failure.
    const said = [...apps, ['tester', tester] as const]
      .map(([name, p]) => `--- ${name}\n${p.stderr().slice(-2000)}`)
      .join('\n');
    throw new Error(`${e.message}\n${said}`);
  });
});

after(async () => {
  await Promise.all([...apps.values(), tester].filter(Boolean).map((p) => p.stop('SIGKILL')));
  await cp?.stop();
});

test('a request to fe returns the whole call tree; be1 instances share the load', async () => {
  const counts: Record<string, number> = {};
  for (let i = 0; i < 40; i++) {
    const r = await callFe();
    assert.equal(r.status, 200, r.body);
    assert.equal(shape(r.tree!), FULL_TREE);
    const be1 = r.tree!.calls[0] as TreeNode;
    counts[be1.instance] = (counts[be1.instance] ?? 0) + 1;
  }
  // Round robin over two instances: 20/20; ±10 allows for picks made while a connection opened.
  assert.deepEqual(Object.keys(counts).sort(), ['be1-0', 'be1-1']);
  assert.ok(counts['be1-0']! >= 10 && counts['be1-1']! >= 10, JSON.stringify(counts));
});

test('the control plane killed for 10 s under steady traffic: zero failed requests; a change after restart applies', async () => {
  const apiPort = Number(new URL(cp.apiUrl).port);
  const xdsPort = cp.xdsPort;
  const traffic = steadyTraffic();
  await cp.kill();
  await new Promise((r) => setTimeout(r, 10_000));
  cp = await startControlPlane({ dataDir, apiPort, xdsPort });
  const { ok, failed } = await traffic.stop();
  assert.deepEqual(failed, [], `failed requests while the control plane was down (${ok} succeeded)`);
  assert.ok(ok > 50, `too little traffic to mean anything: ${ok}`);

  // After the restart: send be4's traffic to be3 instead; fe's sidecar must pick it up.
  const route = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: be4-to-be3}
spec:
  parentRefs: [{name: be4}]
  rules: [{backendRefs: [{name: be3}]}]
`;
  const r = await runWeft(['apply', '-f', '-'], { server: cp.apiUrl, input: route });
  assert.equal(r.code, 0, r.stderr);
  await eventually(
    'fe calling be3 for be4',
    async () => {
      const res = await callFe();
      return res.tree && shape(res.tree) === 'fe(be1(be2,be3),be3)';
    },
    10_000,
  );
  const d = await runWeft(['delete', 'httproute', 'be4-to-be3'], { server: cp.apiUrl });
  assert.equal(d.code, 0, d.stderr);
  await eventually('the tree back to normal', async () => {
    const res = await callFe();
    return res.tree && shape(res.tree) === FULL_TREE;
  });
});

test('graceful SIGTERM of a be1 instance under load: zero failed requests, it exits 0', async () => {
  // The instance with the lowest inbound port is stopped on purpose: be1 is an implicit service
  // whose port number is the lowest of its instances', so that number changes now. Its cluster
  // must not (it is keyed by the port's name); a renamed cluster would fail requests for the
  // moments until fe's sidecar had the new routes and endpoints.
  const port = (p: MeshProcess): number => Number(p.inbound!.slice(p.inbound!.lastIndexOf(':') + 1));
  const [victim, keep] = ['be1-0', 'be1-1'].sort((a, b) => port(apps.get(a)!) - port(apps.get(b)!));
  const traffic = steadyTraffic();
  await new Promise((r) => setTimeout(r, 500));
  const code = await apps.get(victim!)!.stop('SIGTERM');
  await new Promise((r) => setTimeout(r, 500));
  const { ok, failed } = await traffic.stop();
  assert.equal(code, 0);
  assert.deepEqual(failed, [], `failed requests around the SIGTERM of ${victim} (${ok} succeeded)`);
  for (let i = 0; i < 10; i++) {
    const r = await callFe();
    assert.equal((r.tree!.calls[0] as TreeNode).instance, keep, 'only the remaining instance answers');
  }
  await startApp('be1', victim!, ['be2', 'be3']);
  lastRestarted = victim!;
});

test('a SIGKILLed sidecar: its endpoint leaves the other proxies within the lease TTL', async () => {
  const victim = apps.get(lastRestarted)!;
  const victimPort = Number(victim.inbound!.slice(victim.inbound!.lastIndexOf(':') + 1));
  const fe = apps.get('fe-0')!;
  type Clusters = { clusters: Array<{ name: string; endpoints: Array<{ port: number }> }> };
  const be1Ports = async (): Promise<number[]> => {
    const res = await fetch(`http://${fe.admin}/clusters`);
    const stats = (await res.json()) as Clusters;
    return stats.clusters
      .filter((c) => c.name.endsWith('||be1.default'))
      .flatMap((c) => c.endpoints.map((e) => e.port));
  };
  await eventually('fe knows both be1 instances', async () => (await be1Ports()).includes(victimPort));
  const killedAt = Date.now();
  await victim.stop('SIGKILL');
  await eventually(
    'the killed endpoint gone from fe',
    async () => !(await be1Ports()).includes(victimPort),
    (LEASE_TTL_S + 3) * 1000,
  );
  const ms = Date.now() - killedAt;
  // Lease TTL plus the store's expiry check and the push: well within TTL + 1.5 s.
  assert.ok(ms <= LEASE_TTL_S * 1000 + 1500, `took ${ms} ms`);
  apps.delete(lastRestarted);
});

test('weft run: an app that calls a peer on its first line succeeds; a job exit code is returned', async () => {
  const first = [
    "const u = new URL(process.env.HTTP_PROXY); require('http').get({ host: u.hostname, port: u.port, path: 'http://be2/', headers: { host: 'be2' } },",
    '  (r) => process.exit(r.statusCode === 200 ? 0 : 10)).on("error", () => process.exit(11));',
  ].join('\n');
  const token = await joinTokenFor(cp.apiUrl, 'job');
  const run = (script: string) =>
    runWeft(
      [
        'run',
        '--service',
        'job',
        '--control-plane',
        cp.apiUrl,
        '--outbound-addr',
        '127.0.0.1:0',
        '--admin-addr',
        '127.0.0.1:0',
        '--',
        process.execPath,
        '-e',
        script,
      ],
      { token },
    );
  const ok = await run(first);
  assert.equal(ok.code, 0, `the first call failed: ${ok.stderr}`);
  const failing = await run('process.exit(7)');
  assert.equal(failing.code, 7);
});
