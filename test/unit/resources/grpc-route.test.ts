import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertErrors, assertValid, grpcRouteDoc, withField } from './fixtures.js';

test('a valid GRPCRoute gets defaults', () => {
  const { resource } = assertValid(grpcRouteDoc());
  assert.deepEqual(resource.spec, {
    parentRefs: [{ group: '', kind: 'Service', name: 'greeter', port: 50051 }],
    rules: [
      {
        matches: [{ method: { type: 'Exact', service: 'helloworld.Greeter', method: 'SayHello' } }],
        backendRefs: [{ group: '', kind: 'Service', name: 'greeter-v2', port: 50051, weight: 1 }],
      },
    ],
  });
});

test('GRPCRoute without rules or matches matches every call', () => {
  const { resource } = assertValid(withField(grpcRouteDoc(), 'spec.rules', undefined));
  assert.deepEqual(resource.spec, {
    parentRefs: [{ group: '', kind: 'Service', name: 'greeter', port: 50051 }],
    rules: [{}],
  });
});

test('GRPCRoute method matches: service or method required, names checked, regexes RE2', () => {
  const doc = withField(grpcRouteDoc(), 'spec.rules[0].matches', [
    { method: { type: 'Exact' } },
    { method: { service: 'hello world', method: '1Say' } },
    { method: { type: 'RegularExpression', service: 'helloworld\\..*', method: '(?=Say).*' } },
    { method: { type: 'Regex', method: 'Say' } },
  ]);
  assertErrors(doc, [
    ['spec.rules[0].matches[0].method', 'must set service, method or both'],
    ['spec.rules[0].matches[1].method.service', 'must be a fully qualified gRPC service name'],
    ['spec.rules[0].matches[1].method.method', 'must be a gRPC method name'],
    ['spec.rules[0].matches[2].method.method', 'uses a lookahead'],
    ['spec.rules[0].matches[3].method.type', 'must be one of Exact, RegularExpression, got "Regex"'],
  ]);
});

test('GRPCRoute header matches and filters follow the shared rules', () => {
  const doc = withField(grpcRouteDoc(), 'spec.rules[0]', {
    matches: [
      {
        headers: [
          { name: 'x-tenant', value: 'a' },
          { name: 'X-Tenant', value: 'b' },
        ],
      },
    ],
    filters: [
      { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-a', value: '1' }] } },
      { type: 'URLRewrite', urlRewrite: {} },
    ],
    backendRefs: [{ name: 'greeter', weight: 2, port: 50051 }],
  });
  assertErrors(doc, [
    ['spec.rules[0].matches[0].headers[1].name', 'duplicate header "x-tenant" (also at [0])'],
    [
      'spec.rules[0].filters[1].type',
      'must be one of RequestHeaderModifier, ResponseHeaderModifier, RequestMirror',
    ],
    ['spec.rules[0].filters[1].urlRewrite', 'unknown field "urlRewrite"'],
  ]);
});

test('GRPCRoute parentRefs and backendRefs are Services', () => {
  const doc = withField(
    withField(grpcRouteDoc(), 'spec.parentRefs', [
      { kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'gw' },
    ]),
    'spec.rules[0].backendRefs',
    [{ name: 'greeter', weight: -5 }],
  );
  assertErrors(doc, [
    ['spec.parentRefs[0].kind', 'not supported yet'],
    ['spec.rules[0].backendRefs[0].weight', 'got -5'],
  ]);
});
