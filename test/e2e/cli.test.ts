// End to end: the `weft` CLI against a real control plane process. Output follows kubectl;
// every bad input gets a clear answer naming file, document and field, exits non-zero, and
// stores nothing.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  runWeft,
  startControlPlane,
  tempDir,
  type ControlPlaneProcess,
  apiFetch,
} from '../helpers/weft-process.js';

let cp: ControlPlaneProcess;
let dir: string;

before(async () => {
  cp = await startControlPlane({ dataDir: tempDir() });
  dir = tempDir();
});
after(async () => {
  await cp?.stop();
});

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const weft = (args: string[], input?: string) =>
  runWeft(args, { server: cp.apiUrl, ...(input ? { input } : {}) });

const WORKLOAD = `apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: api-1, labels: {app: api, version: v1}}
spec: {address: 10.0.0.1, ports: [{name: http, port: 8080, protocol: HTTP}]}
`;

async function count(kind: string): Promise<number> {
  const r = await weft(['get', kind, '-A', '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { items: unknown[] }).items.length;
}

test('apply creates, re-apply is unchanged, a change is configured; get shows it', async () => {
  const f = file('api.yaml', WORKLOAD);
  let r = await weft(['apply', '-f', f]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'workload/api-1 created\n');
  r = await weft(['apply', '-f', f]);
  assert.equal(r.stdout, 'workload/api-1 unchanged\n');
  r = await weft(['apply', '-f', '-'], WORKLOAD.replace('10.0.0.1', '10.0.0.2'));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'workload/api-1 configured\n');

  r = await weft(['get', 'workloads']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^NAME\s+ADDRESS\s+PORTS\s+APP\s+VERSION\s+AGE$/m);
  assert.match(r.stdout, /^api-1\s+10\.0\.0\.2\s+8080\/HTTP\s+api\s+v1\s+\d+s$/m);

  r = await weft(['get', 'workload', 'api-1', '-o', 'yaml']);
  assert.match(r.stdout, /kind: Workload/);
  assert.match(r.stdout, /resourceVersion: "\d+"/);
});

test('the store keeps history: an earlier version can be read back', async () => {
  const r = await weft(['get', 'workload', 'api-1', '-o', 'json']);
  const current = JSON.parse(r.stdout) as { metadata: { resourceVersion: string } };
  const hist = await apiFetch(`${cp.apiUrl}/api/v1/resources/workloads/default/api-1/history`);
  const versions = (
    (await hist.json()) as {
      items: Array<{ spec: { address: string }; metadata: { resourceVersion: string } }>;
    }
  ).items;
  assert.deepEqual(
    versions.map((v) => v.spec.address),
    ['10.0.0.1', '10.0.0.2'],
  );
  assert.equal(versions[1]!.metadata.resourceVersion, current.metadata.resourceVersion);
  const old = await weft([
    'get',
    'workload',
    'api-1',
    '-o',
    'json',
    '--resource-version',
    versions[0]!.metadata.resourceVersion,
  ]);
  assert.equal(old.code, 0, old.stderr);
  assert.equal((JSON.parse(old.stdout) as { spec: { address: string } }).spec.address, '10.0.0.1');
});

test('a stale resourceVersion is refused with 409 and nothing changes', async () => {
  const r = await weft(['get', 'workload', 'api-1', '-o', 'json']);
  const obj = JSON.parse(r.stdout) as { metadata: { resourceVersion: string }; spec: { address: string } };
  const stale = String(Number(obj.metadata.resourceVersion) - 1);
  const doc = WORKLOAD.replace('{name: api-1,', `{name: api-1, resourceVersion: "${stale}",`).replace(
    '10.0.0.1',
    '10.9.9.9',
  );
  const res = await apiFetch(`${cp.apiUrl}/api/v1/apply`, {
    method: 'POST',
    headers: { 'content-type': 'application/yaml' },
    body: doc,
  });
  assert.equal(res.status, 409);
  const body = (await res.json()) as { code: string; errors: Array<{ path: string }> };
  assert.equal(body.code, 'WEFT_E_CONFLICT');
  assert.equal(body.errors[0]!.path, 'metadata.resourceVersion');
  const cli = await weft(['apply', '-f', file('stale.yaml', doc)]);
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, /stale\.yaml: document 0 \(Workload api-1\): metadata\.resourceVersion: /);
  const now = await weft(['get', 'workload', 'api-1', '-o', 'json']);
  assert.equal((JSON.parse(now.stdout) as { spec: { address: string } }).spec.address, obj.spec.address);
});

test('bad input: every error named by file, document and field; the whole batch is refused', async () => {
  const before = await count('workloads');
  const f = file(
    'bad.yaml',
    `${WORKLOAD.replace('api-1', 'good-1')}---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: bad-1}
spec: {address: 10.0.0.3, ports: [{name: http, port: 99999, protocol: HTTP}], colour: blue}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: api}]
  rules: [{backendRefs: [{name: api, weight: -1}]}]
`,
  );
  const r = await weft(['apply', '-f', f]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /bad\.yaml: document 1 \(Workload bad-1\): spec\.ports\[0\]\.port: /);
  assert.match(r.stderr, /bad\.yaml: document 1 \(Workload bad-1\): spec\.colour: /);
  assert.match(
    r.stderr,
    /bad\.yaml: document 2 \(HTTPRoute r\): spec\.rules\[0\]\.backendRefs\[0\]\.weight: /,
  );
  assert.equal(await count('workloads'), before, 'nothing stored, not even the valid first document');
});

test('bad input: unknown kind, wrong type, duplicates, YAML syntax', async () => {
  let r = await weft([
    'apply',
    '-f',
    file('kind.yaml', 'apiVersion: v1\nkind: Gadget\nmetadata: {name: x}\nspec: {}\n'),
  ]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /kind\.yaml: document 0 \(Gadget x\): kind: .*Gadget/);
  assert.match(r.stderr, /Workload/, 'lists the known kinds');

  r = await weft(['apply', '-f', file('type.yaml', WORKLOAD.replace('port: 8080', 'port: "eighty"'))]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /spec\.ports\[0\]\.port: /);

  r = await weft(['apply', '-f', file('dup.yaml', `${WORKLOAD}---\n${WORKLOAD}`)]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /dup\.yaml: document 1 \(Workload api-1\): metadata\.name: .*duplicate/i);

  r = await weft(['apply', '-f', file('syntax.yaml', 'apiVersion: v1\nkind: [unclosed\n')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /syntax\.yaml: document 0: .*line \d+/);

  r = await weft(['apply', '-f', join(dir, 'missing.yaml')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /missing\.yaml: no such file/);
});

test('errors in a file holding a kind: List name the YAML document and the item', async () => {
  const list = `apiVersion: v1
kind: List
items:
- ${WORKLOAD.replace(/\n/g, '\n  ').replace('api-1', 'list-0')}
- ${WORKLOAD.replace(/\n/g, '\n  ').replace('api-1', 'list-1').replace('port: 8080', 'port: -8')}
`;
  const f = file(
    'list.yaml',
    `${list}---
${WORKLOAD.replace('api-1', 'after-list').replace('10.0.0.1', '')}`,
  );
  const r = await weft(['apply', '-f', f]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /list\.yaml: document 0, item 1 \(Workload list-1\): spec\.ports\[0\]\.port: /);
  assert.match(r.stderr, /list\.yaml: document 1 \(Workload after-list\): spec\.address: /);
});

test('a route to a backend that does not exist is stored with a warning', async () => {
  const f = file(
    'route.yaml',
    `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api-route}
spec:
  parentRefs: [{name: api}]
  rules: [{backendRefs: [{name: api-v9}]}]
`,
  );
  const r = await weft(['apply', '-f', f]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'httproute/api-route created\n');
  assert.match(r.stderr, /Warning: .*route\.yaml: document 0: .*backend default\/api-v9 does not exist yet/);
});

test('apply and delete a directory; delete by kind and name; errors for missing objects', async () => {
  const sub = join(dir, 'tree');
  mkdirSync(sub);
  writeFileSync(join(sub, 'a.yaml'), WORKLOAD.replace(/api-1/g, 'tree-a'));
  writeFileSync(join(sub, 'b.yml'), WORKLOAD.replace(/api-1/g, 'tree-b'));
  writeFileSync(join(sub, 'notes.txt'), 'not a manifest');
  let r = await weft(['apply', '-f', sub]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'workload/tree-a created\nworkload/tree-b created\n');
  r = await weft(['delete', '-f', sub]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'workload/tree-a deleted\nworkload/tree-b deleted\n');
  r = await weft(['delete', 'workload', 'tree-a']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Workload default\/tree-a not found/);
  r = await weft(['get', 'wl', 'nope']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not found/);
});

test('version, health, and an unreachable server', async () => {
  let r = await weft(['version']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Client Version: \d+\.\d+\.\d+\nServer Version: \d+\.\d+\.\d+\n$/);
  const health = await apiFetch(`${cp.apiUrl}/healthz`);
  assert.equal(health.status, 200);
  r = await runWeft(['get', 'workloads'], { server: 'http://127.0.0.1:1' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot reach the control plane at http:\/\/127\.0\.0\.1:1/);
});
