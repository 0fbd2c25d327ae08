// Integration: the REST API's answers to bad input. Each case gets a 4xx with a stable code and
// every error's document and field path, and stores nothing (the revision does not move).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { RunningControlPlane } from '../../src/control-plane/control-plane.js';
import { startInProcessControlPlane, apiFetch } from '../helpers/weft-process.js';

let cp: RunningControlPlane;

before(async () => {
  cp = await startInProcessControlPlane();
});
after(() => cp.close());

interface ErrorBody {
  code: string;
  message: string;
  errors?: Array<{ document?: number; path: string; message: string }>;
}

async function post(
  path: string,
  body: string,
  type = 'application/json',
): Promise<{ status: number; body: ErrorBody }> {
  const res = await apiFetch(`${cp.apiUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': type },
    body,
  });
  return { status: res.status, body: (await res.json()) as ErrorBody };
}

const route = (weight: number, extra = ''): object => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name: `r${extra}` },
  spec: { parentRefs: [{ name: 'svc' }], rules: [{ backendRefs: [{ name: 'svc', weight }] }] },
});

const cases: Array<[string, string, string, number, string, RegExp]> = [
  [
    'unknown kind',
    JSON.stringify({ documents: [{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: {} }] }),
    'application/json',
    422,
    'kind',
    /Pod/,
  ],
  [
    'negative weight',
    JSON.stringify({ documents: [route(-1)] }),
    'application/json',
    422,
    'spec.rules[0].backendRefs[0].weight',
    /0/,
  ],
  [
    'unknown field',
    JSON.stringify({ documents: [{ ...route(1), spec: { parentRefs: [{ name: 'svc' }], rulez: [] } }] }),
    'application/json',
    422,
    'spec.rulez',
    /unknown field/,
  ],
  [
    'bad type',
    JSON.stringify({ documents: [{ ...route(1), metadata: { name: 42 } }] }),
    'application/json',
    422,
    'metadata.name',
    /string/,
  ],
  [
    'duplicate names',
    JSON.stringify({ documents: [route(1), route(2)] }),
    'application/json',
    422,
    'metadata.name',
    /duplicate/,
  ],
  ['YAML syntax', 'kind: [', 'application/yaml', 400, '', /\d+:\d+: Flow sequence/],
  ['JSON syntax', '{"documents": [', 'application/json', 400, '', /JSON/],
];

for (const [name, body, type, status, path, message] of cases) {
  test(`bad input answers ${status}: ${name}; nothing is stored`, async () => {
    const before = cp.store.revision();
    const res = await post('/api/v1/apply', body, type);
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.match(res.body.code, /^WEFT_E_/);
    if (path !== '') {
      const hit = res.body.errors?.find((e) => e.path === path);
      assert.ok(hit, `no error at ${path}: ${JSON.stringify(res.body)}`);
      assert.match(hit.message, message);
    } else {
      assert.match(res.body.message, message);
    }
    assert.equal(cp.store.revision(), before, 'the store revision moved: something was stored');
  });
}

test('duplicate names are a 4xx with a stable code', async () => {
  const res = await post('/api/v1/apply', JSON.stringify({ documents: [route(1), route(2)] }));
  assert.ok(res.status >= 400 && res.status < 500);
  assert.equal(res.body.errors?.[0]?.document, 1);
});

test('an empty apply, an unknown path, an unknown kind in a URL, and a too-large body', async () => {
  assert.equal((await post('/api/v1/apply', JSON.stringify({ documents: [] }))).status, 400);
  const nf = await apiFetch(`${cp.apiUrl}/api/v1/nothing`);
  assert.equal(nf.status, 404);
  assert.equal(((await nf.json()) as ErrorBody).code, 'WEFT_E_NOT_FOUND');
  const uk = await apiFetch(`${cp.apiUrl}/api/v1/resources/gadgets`);
  assert.equal(uk.status, 400);
  assert.match(((await uk.json()) as ErrorBody).message, /known kinds: workloads/);
  const big = await post('/api/v1/apply', 'x'.repeat(5 * 1024 * 1024), 'application/yaml');
  assert.equal(big.status, 413);
  assert.equal(big.body.code, 'WEFT_E_TOO_LARGE');
});

test('a route to a missing backend is stored with a warning in the response', async () => {
  const res = await apiFetch(`${cp.apiUrl}/api/v1/apply`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ documents: [route(1, '-warn')] }),
  });
  assert.equal(res.status, 200);
  const body = (await res.json()) as {
    results: Array<{ action: string }>;
    warnings: Array<{ document: number; message: string }>;
  };
  assert.equal(body.results[0]!.action, 'created');
  assert.ok(body.warnings.some((w) => w.document === 0 && /default\/svc does not exist yet/.test(w.message)));
});

test('dry run validates and reports but stores nothing', async () => {
  const before = cp.store.revision();
  const res = await apiFetch(`${cp.apiUrl}/api/v1/apply?dryRun=true`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ documents: [route(1, '-dry')] }),
  });
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as { results: Array<{ action: string }> }).results[0]!.action, 'created');
  assert.equal(cp.store.revision(), before);
});

test('watch: a bad revision is a 400 before any stream starts; a malformed path is a 400', async () => {
  const bad = await apiFetch(`${cp.apiUrl}/api/v1/watch?fromRevision=abc`);
  assert.equal(bad.status, 400);
  assert.equal(((await bad.json()) as ErrorBody).code, 'WEFT_E_BAD_REQUEST');
  const uri = await apiFetch(`${cp.apiUrl}/api/v1/resources/%E0%A4%A/x/y`);
  assert.equal(uri.status, 400);
  assert.match(((await uri.json()) as ErrorBody).message, /percent-encoding/);
});

test('concurrent applies of one object: each answer is 200 or a 409 about the document', async () => {
  const doc = (i: number): object => ({
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'Workload',
    metadata: { name: 'contended', labels: { app: 'contended' } },
    spec: { address: `10.9.0.${i}`, ports: [{ name: 'http', port: 80 }] },
  });
  await post('/api/v1/apply', JSON.stringify({ documents: [doc(0)] }));
  // All twenty read the same stored version before any of their writes is durable, so all but
  // the first to commit conflict at the store.
  const answers = await Promise.all(
    Array.from({ length: 20 }, (_, i) => post('/api/v1/apply', JSON.stringify({ documents: [doc(i + 1)] }))),
  );
  const conflicts = answers.filter((a) => a.status === 409);
  assert.ok(
    answers.every((a) => a.status === 200 || a.status === 409),
    JSON.stringify(answers.map((a) => a.status)),
  );
  assert.ok(conflicts.length > 0, 'expected at least one conflict among 20 concurrent writes');
  for (const c of conflicts) {
    assert.equal(c.body.code, 'WEFT_E_CONFLICT');
    assert.doesNotMatch(c.body.message, /\/weft\/resources/, 'no internal store key in the answer');
    assert.deepEqual(
      c.body.errors?.map((e) => [e.document, e.path]),
      [[0, 'metadata.resourceVersion']],
    );
  }
});

test('delete: naming one object twice is a 400, and nothing is deleted', async () => {
  const w = {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'Workload',
    metadata: { name: 'twice', labels: { app: 'twice' } },
    spec: { address: '10.9.1.1', ports: [{ name: 'http', port: 80 }] },
  };
  assert.equal((await post('/api/v1/apply', JSON.stringify({ documents: [w] }))).status, 200);
  const res = await post('/api/v1/delete', JSON.stringify({ documents: [w, w] }));
  assert.equal(res.status, 400);
  assert.equal(res.body.code, 'WEFT_E_DUPLICATE');
  assert.equal(res.body.errors?.[0]?.document, 1);
  assert.equal((await apiFetch(`${cp.apiUrl}/api/v1/resources/workloads/default/twice`)).status, 200);
});
