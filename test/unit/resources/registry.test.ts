import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WeftError } from '../../../src/errors.js';
import { isWeftError } from '../../../src/errors.js';
import {
  KINDS,
  findKind,
  kindFor,
  parseDocuments,
  parseResourceKey,
  resourceKey,
  resourceKeyString,
  resourcePrefix,
  validateBatch,
  validateResource,
} from '../../../src/resources/index.js';
import { httpRouteDoc, serviceDoc, withField, workloadDoc } from './fixtures.js';

function parseError(text: string, source?: string): WeftError {
  try {
    parseDocuments(text, source);
  } catch (e) {
    assert.ok(isWeftError(e, 'WEFT_E_PARSE'), `expected WEFT_E_PARSE, got ${String(e)}`);
    return e;
  }
  return assert.fail('expected a parse error');
}

test('kinds are found by name, plural, singular or short name, ignoring case', () => {
  assert.equal(findKind('hr')?.kind, 'HTTPRoute');
  assert.equal(findKind('HTTPRoutes')?.kind, 'HTTPRoute');
  assert.equal(findKind('svc')?.kind, 'Service');
  assert.equal(findKind('grpcroute')?.kind, 'GRPCRoute');
  assert.equal(findKind('TS')?.kind, 'TrafficSplit');
  assert.equal(findKind('workloads')?.kind, 'Workload');
  assert.equal(findKind('gateway'), undefined);
  assert.equal(kindFor('gateway.networking.k8s.io/v1beta1', 'HTTPRoute')?.kind, 'HTTPRoute');
  assert.equal(kindFor('v1', 'HTTPRoute'), undefined);
  const names = KINDS.flatMap((k) => [k.kind.toLowerCase(), k.plural, k.singular, ...k.shortNames]);
  assert.equal(new Set(names).size, names.length - KINDS.length, 'names must not collide across kinds');
});

test('parseDocuments splits YAML streams and skips empty documents', () => {
  const { documents } = parseDocuments('---\n# only a comment\n---\na: 1\n---\n---\nb: [2]\n...\n');
  assert.deepEqual(documents, [{ a: 1 }, { b: [2] }]);
  assert.deepEqual(parseDocuments('').documents, []);
  assert.deepEqual(parseDocuments('{"kind": "Service", "n": 1}').documents, [{ kind: 'Service', n: 1 }]);
});

test('parseDocuments expands a `kind: List` into its items', () => {
  const { documents } = parseDocuments('apiVersion: v1\nkind: List\nitems:\n- {kind: A}\n- {kind: B}\n');
  assert.deepEqual(documents, [{ kind: 'A' }, { kind: 'B' }]);
});

test('parseDocuments supports anchors and merge keys in moderation', () => {
  const { documents } = parseDocuments('base: &b {port: 80}\nother:\n  <<: *b\n  name: x\n');
  assert.deepEqual(documents, [{ base: { port: 80 }, other: { port: 80, name: 'x' } }]);
});

test('YAML syntax errors carry document index, source, line and column', () => {
  const error = parseError('a: 1\n---\nkind: Service\nmetadata: {name: x\nspec: {}\n', 'routes.yaml');
  assert.equal(error.errors.length >= 1, true);
  const first = error.errors[0];
  assert.equal(first?.document, 1);
  assert.match(first?.message ?? '', /^routes\.yaml:\d+:\d+: /);
  assert.match(error.message, /routes\.yaml/);
  assert.equal(error.status, 400);
});

test('duplicate keys are a parse error, not a silent overwrite', () => {
  const error = parseError('kind: Service\nkind: Workload\n');
  assert.match(error.errors[0]?.message ?? '', /^2:1: .*unique/);
});

test('alias bombs are refused', () => {
  const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 0; i < 8; i++)
    lines.push(
      `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10)
        .fill(`*${String.fromCharCode(97 + i)}`)
        .join(', ')}]`,
    );
  const error = parseError(lines.join('\n'));
  assert.match(error.errors[0]?.message ?? '', /alias/i);
});

test('validateResource: non-object documents and unknown kinds list the known kinds', () => {
  assert.deepEqual(validateResource([1], 3), {
    ok: false,
    errors: [
      {
        path: '',
        document: 3,
        message: 'must be a mapping with apiVersion, kind, metadata and spec, got a list',
      },
    ],
  });
  const unknown = validateResource({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } });
  assert.deepEqual(unknown, {
    ok: false,
    errors: [
      {
        path: 'kind',
        message:
          'unknown kind "Pod"; known kinds: Workload, Service, HTTPRoute, GRPCRoute, TrafficSplit, AuthorizationPolicy, TrafficTarget, HTTPRouteGroup, MeshConfig',
      },
    ],
  });
  const misspelt = validateResource({ ...httpRouteDoc(), kind: 'HttpRoute' });
  assert.match(!misspelt.ok ? (misspelt.errors[0]?.message ?? '') : '', /did you mean "HTTPRoute"/);
  const missing = validateResource({ metadata: {} });
  assert.match(
    !missing.ok ? (missing.errors[0]?.message ?? '') : '',
    /^required field is missing; known kinds/,
  );
});

test('validateResource: wrong apiVersion, metadata and spec errors come back together', () => {
  const doc = withField(
    withField(withField(httpRouteDoc(), 'apiVersion', 'v1'), 'metadata.name', 'Echo'),
    'spec.rules[1].backendRefs[1].weight',
    -1,
  );
  const result = validateResource(doc, 2);
  assert.deepEqual(!result.ok && result.errors, [
    {
      path: 'apiVersion',
      document: 2,
      message:
        'must be one of gateway.networking.k8s.io/v1, gateway.networking.k8s.io/v1beta1 for kind HTTPRoute, got "v1"',
    },
    { path: 'metadata.name', document: 2, message: result.ok ? '' : (result.errors[1]?.message ?? '') },
    {
      path: 'spec.rules[1].backendRefs[1].weight',
      document: 2,
      message: 'must be an integer ≥ 0 and ≤ 1000000, got -1',
    },
  ]);
  const noMetadata = validateResource({ apiVersion: 'v1', kind: 'Service', spec: { ports: [{ port: 80 }] } });
  assert.deepEqual(!noMetadata.ok && noMetadata.errors.map((e) => e.path), ['metadata']);
});

test('validateBatch accepts a valid batch and flags duplicates on the later document', () => {
  const ok = validateBatch([workloadDoc(), serviceDoc(), httpRouteDoc()]);
  assert.equal(ok.ok, true);
  assert.deepEqual(ok.ok && ok.resources.map((r) => r.kind), ['Workload', 'Service', 'HTTPRoute']);
  const sameNameOtherNamespace = withField(serviceDoc(), 'metadata.namespace', 'other');
  const result = validateBatch([
    serviceDoc(),
    sameNameOtherNamespace,
    withField(serviceDoc(), 'metadata.namespace', 'default'),
    [1],
  ]);
  assert.deepEqual(!result.ok && result.errors, [
    { path: 'metadata.name', document: 2, message: 'duplicate of document 0' },
    {
      path: '',
      document: 3,
      message: 'must be a mapping with apiVersion, kind, metadata and spec, got a list',
    },
  ]);
});

test('validateBatch prefixes warnings with the document index', () => {
  const result = validateBatch([
    serviceDoc(),
    withField(httpRouteDoc(), 'apiVersion', 'gateway.networking.k8s.io/v1beta1'),
  ]);
  assert.deepEqual(result.ok && result.warnings.map((w) => w.slice(0, 11)), ['document 1:']);
});

test('resource keys', () => {
  const result = validateResource(serviceDoc());
  assert.ok(result.ok);
  assert.deepEqual(resourceKey(result.resource), { kind: 'Service', namespace: 'default', name: 'echo-v1' });
  assert.equal(resourceKeyString(result.resource), '/weft/resources/Service/default/echo-v1');
  assert.equal(
    resourceKeyString({ kind: 'HTTPRoute', namespace: 'a', name: 'b' }),
    '/weft/resources/HTTPRoute/a/b',
  );
  assert.equal(resourcePrefix('Service'), '/weft/resources/Service/');
  assert.equal(resourcePrefix('Service', 'shop'), '/weft/resources/Service/shop/');
  assert.deepEqual(parseResourceKey('/weft/resources/Service/default/echo-v1'), {
    kind: 'Service',
    namespace: 'default',
    name: 'echo-v1',
  });
  assert.equal(parseResourceKey('/weft/leases/1'), undefined);
});
