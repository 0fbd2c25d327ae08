import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertErrors, assertValid, serviceDoc, withField } from './fixtures.js';

test('a valid Service gets protocol TCP and targetPort defaults', () => {
  const { resource } = assertValid(
    withField(serviceDoc(), 'spec.ports', [{ port: 80, appProtocol: 'kubernetes.io/h2c' }]),
  );
  assert.deepEqual(resource.spec, {
    selector: { app: 'echo', version: 'v1' },
    ports: [{ port: 80, targetPort: 80, protocol: 'TCP', appProtocol: 'kubernetes.io/h2c' }],
  });
});

test('Service targetPort is a port number or a port name', () => {
  assertValid(withField(serviceDoc(), 'spec.ports[0].targetPort', 'http'));
  assertErrors(withField(serviceDoc(), 'spec.ports[0].targetPort', 0), [
    ['spec.ports[0].targetPort', 'must be an integer ≥ 1 and ≤ 65535, got 0'],
  ]);
  assertErrors(withField(serviceDoc(), 'spec.ports[0].targetPort', 'HTTP--x'), [
    ['spec.ports[0].targetPort', 'must be an IANA service name'],
  ]);
  assertErrors(withField(serviceDoc(), 'spec.ports[0].targetPort', true), [
    ['spec.ports[0].targetPort', 'must be an integer ≥ 1 and ≤ 65535 or a non-empty string'],
  ]);
});

test('Service port names are required and unique when there are several ports', () => {
  const doc = withField(serviceDoc(), 'spec.ports', [
    { port: 80 },
    { name: 'grpc', port: 81 },
    { name: 'grpc', port: 80 },
  ]);
  assertErrors(doc, [
    ['spec.ports[0].name', 'required when the Service has more than one port'],
    ['spec.ports[2].name', 'duplicate port name "grpc" (also at [1])'],
    ['spec.ports[2].port', 'duplicate port "80/TCP" (also at [0])'],
  ]);
});

test('Service names are DNS-1035 labels; ports must not be empty', () => {
  const doc = withField(withField(serviceDoc(), 'metadata.name', '1echo'), 'spec.ports', []);
  assertErrors(doc, [
    ['metadata.name', 'must be a DNS-1035 label'],
    ['spec.ports', 'must have at least 1 item, got 0'],
  ]);
});

test('Service selector follows label rules; an empty selector warns', () => {
  assertErrors(withField(serviceDoc(), 'spec.selector', { app: 'echo v1' }), [
    ['spec.selector.app', 'must be empty or letters, digits'],
  ]);
  const { warnings } = assertValid(withField(serviceDoc(), 'spec.selector', undefined));
  assert.match(warnings.join('\n'), /empty selector/);
  const udp = assertValid(withField(serviceDoc(), 'spec.ports[0].protocol', 'UDP'));
  assert.match(udp.warnings.join('\n'), /UDP, which the mesh does not proxy/);
});

test('Service appProtocol must look like a protocol name', () => {
  assertErrors(withField(serviceDoc(), 'spec.ports[0].appProtocol', 'h2c over tls'), [
    ['spec.ports[0].appProtocol', 'must be an IANA service name or a domain-prefixed name'],
  ]);
});
