import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertErrors, assertValid, withField, workloadDoc } from './fixtures.js';

test('a valid Workload is normalized: namespace, protocol and serviceAccount defaults', () => {
  const { resource, warnings } = assertValid(workloadDoc());
  assert.deepEqual(resource, {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'Workload',
    metadata: { name: 'echo-v1-0', namespace: 'default', labels: { app: 'echo', version: 'v1' } },
    spec: {
      address: '10.0.0.11',
      ports: [{ name: 'http', port: 8080, protocol: 'HTTP' }],
      serviceAccount: 'default',
    },
  });
  assert.deepEqual(warnings, []);
});

test('Workload address accepts IPv4, IPv6 and hostnames', () => {
  for (const address of ['127.0.0.1', '::1', 'fd00::10', 'echo-1.internal', 'Echo.Example.com']) {
    assertValid(withField(workloadDoc(), 'spec.address', address));
  }
  assertErrors(withField(workloadDoc(), 'spec.address', '10.0.0.1:8080'), [
    ['spec.address', 'must be an IPv4 or IPv6 address or a DNS hostname'],
  ]);
});

test('Workload port numbers, names and protocols are checked', () => {
  const doc = withField(workloadDoc(), 'spec.ports', [
    { name: 'http', port: 8080 },
    { name: 'http', port: 8080, protocol: 'UDP' },
    { name: 'Admin', port: 70000 },
  ]);
  assertErrors(doc, [
    ['spec.ports[1].protocol', 'must be one of HTTP, HTTP2, GRPC, TCP, got "UDP"'],
    ['spec.ports[2].name', 'must be a DNS-1123 label'],
    ['spec.ports[2].port', 'must be an integer ≥ 1 and ≤ 65535, got 70000'],
  ]);
  assertErrors(
    withField(workloadDoc(), 'spec.ports', [
      { name: 'http', port: 8080 },
      { name: 'http', port: 8080 },
    ]),
    [
      ['spec.ports[1].port', 'duplicate port "8080" (also at [0])'],
      ['spec.ports[1].name', 'duplicate port name "http" (also at [0])'],
    ],
  );
});

test('Workload metadata: name, namespace, labels, resourceVersion', () => {
  const doc = withField(workloadDoc(), 'metadata', {
    name: 'Echo_1',
    namespace: 'My.NS',
    labels: { app: 'echo', version: 2, 'bad key!': 'x', 'example.com/tier': '-front' },
    resourceVersion: 12,
  });
  assertErrors(doc, [
    ['metadata.name', 'must be a DNS-1123 subdomain'],
    ['metadata.namespace', 'must be a DNS-1123 label'],
    ['metadata.labels.version', 'must be a string, got 2 (quote it in YAML)'],
    ['metadata.labels["bad key!"]', 'invalid key: must be a qualified name'],
    ['metadata.labels["example.com/tier"]', 'starting and ending with a letter or digit'],
    ['metadata.resourceVersion', 'must be a string, got 12'],
  ]);
  assertErrors(withField(workloadDoc(), 'metadata.name', 'a'.repeat(254)), [
    ['metadata.name', 'must be at most 253 characters, got 254'],
  ]);
  assertErrors(withField(workloadDoc(), 'metadata.resourceVersion', 'v12'), [
    ['metadata.resourceVersion', 'must be a string of digits'],
  ]);
});

test('Workload read-only metadata from `get -o yaml` is accepted and dropped', () => {
  const doc = withField(workloadDoc(), 'metadata', {
    name: 'echo-v1-0',
    namespace: 'shop',
    resourceVersion: '42',
    uid: '2b0f7c6e',
    generation: 3,
    creationTimestamp: '2025-01-01T00:00:00Z',
    annotations: { 'weft.dev/owner': 'team-a' },
  });
  const { resource } = assertValid({ ...doc, status: { anything: true } });
  assert.deepEqual(resource.metadata, {
    name: 'echo-v1-0',
    namespace: 'shop',
    resourceVersion: '42',
    annotations: { 'weft.dev/owner': 'team-a' },
  });
  assert.equal('status' in resource, false);
});

test('Workload without an app label gets a warning, not an error', () => {
  const { warnings } = assertValid(withField(workloadDoc(), 'metadata.labels', undefined));
  assert.match(warnings[0] ?? '', /no "app" label/);
});

test('Workload missing spec fields reports each one', () => {
  assertErrors(withField(workloadDoc(), 'spec', { port: 8080, serviceAccount: 'Bad_SA' }), [
    ['spec.port', 'unknown field "port"; allowed: address, ports, serviceAccount (did you mean "ports"?)'],
    ['spec.address', 'required field is missing'],
    ['spec.serviceAccount', 'must be a DNS-1123 subdomain'],
  ]);
});
