// AuthorizationPolicy validation: principals, paths, methods and headers with their field paths.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertErrors, assertValid, withField } from './fixtures.js';

function policyDoc(): Record<string, unknown> {
  return {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'be-allow-fe' },
    spec: {
      targetRef: { kind: 'Service', name: 'be' },
      rules: [
        {
          from: [
            { principals: ['spiffe://weft.local/ns/default/sa/fe', 'spiffe://weft.local/ns/ops/*', '*'] },
          ],
          to: [{ methods: ['GET'], paths: ['/api/*', '/healthz', '*'] }],
        },
        {
          from: [{ namespaces: ['ops'] }],
          to: [{ headers: [{ name: 'X-Team', prefix: 'sre-' }, { name: 'x-debug' }] }],
        },
      ],
    },
  };
}

test('a valid AuthorizationPolicy defaults to ALLOW in namespace default', () => {
  const { resource, warnings } = assertValid(policyDoc());
  assert.equal(resource.kind, 'AuthorizationPolicy');
  assert.equal(resource.metadata.namespace, 'default');
  assert.equal(resource.kind === 'AuthorizationPolicy' ? resource.spec.action : '', 'ALLOW');
  assert.deepEqual(warnings, []);
});

test('an ALLOW policy with no rules is valid and warns that it denies everything', () => {
  const { warnings } = assertValid(withField(policyDoc(), 'spec.rules', []));
  assert.match(warnings[0] ?? '', /ALLOW with no rules denies every request to Service be/);
  assert.deepEqual(
    assertValid(withField(withField(policyDoc(), 'spec.rules', []), 'spec.action', 'DENY')).warnings,
    [],
  );
});

test('every bad field is reported with its path', () => {
  const doc = withField(policyDoc(), 'spec', {
    targetRef: { kind: 'Workload', name: 'Be' },
    action: 'AUDIT',
    rules: [
      {
        from: [{ principals: ['fe', 'spiffe://weft.local/*/sa/x*', 'spiffe://weft.local/ns/a b'] }, {}],
        to: [
          { methods: ['get'], paths: ['api/*', '/a*b', '/x?y=1'] },
          { headers: [{ name: 'bad header' }, { name: 'x-a', value: 'a', prefix: 'b' }] },
          {},
        ],
      },
    ],
  });
  assertErrors(doc, [
    ['spec.targetRef.kind', 'must be one of Service'],
    ['spec.targetRef.name', 'DNS-1035'],
    ['spec.action', 'must be one of ALLOW, DENY'],
    ['spec.rules[0].from[0].principals[0]', 'a SPIFFE ID'],
    ['spec.rules[0].from[0].principals[1]', 'a SPIFFE ID'],
    ['spec.rules[0].from[0].principals[2]', 'a SPIFFE ID'],
    ['spec.rules[0].from[1]', 'a from entry must set at least one of principals, notPrincipals, namespaces'],
    ['spec.rules[0].to[0].methods[0]', 'upper-case HTTP method'],
    ['spec.rules[0].to[0].paths[0]', 'a path starting with "/"'],
    ['spec.rules[0].to[0].paths[1]', 'a path starting with "/"'],
    ['spec.rules[0].to[0].paths[2]', 'a path starting with "/"'],
    ['spec.rules[0].to[1].headers[0].name', 'header name'],
    ['spec.rules[0].to[1].headers[1]', 'set value or prefix, not both'],
    ['spec.rules[0].to[2]', 'a to entry must set at least one of methods, paths, notPaths, headers'],
  ]);
});

test('SMI TrafficTarget and HTTPRouteGroup: valid documents and errors with paths', () => {
  const target = {
    apiVersion: 'access.smi-spec.io/v1alpha3',
    kind: 'TrafficTarget',
    metadata: { name: 'metrics' },
    spec: {
      destination: { kind: 'ServiceAccount', name: 'service-a', namespace: 'default' },
      sources: [{ kind: 'ServiceAccount', name: 'prometheus', namespace: 'monitoring' }],
      rules: [{ kind: 'HTTPRouteGroup', name: 'the-routes', matches: ['metrics'] }],
    },
  };
  assertValid(target);
  const group = {
    apiVersion: 'specs.smi-spec.io/v1alpha4',
    kind: 'HTTPRouteGroup',
    metadata: { name: 'the-routes' },
    spec: {
      matches: [{ name: 'metrics', methods: ['GET'], pathRegex: '/metrics', headers: { 'x-probe': '1' } }],
    },
  };
  assertValid(group);
  assertErrors(withField(group, 'spec.matches', [{ name: 'a' }, { name: 'a' }]), [
    ['spec.matches[1].name', 'a'],
  ]);
  assertErrors(withField(target, 'spec.rules', [{ kind: 'TCPRoute', name: 'x' }]), [
    ['spec.rules[0].kind', 'must be one of HTTPRouteGroup'],
  ]);
  assertErrors(withField(target, 'spec.sources', []), [['spec.sources', 'at least 1']]);
  assertErrors(
    withField(group, 'spec.matches', [
      { name: 'a', methods: ['get'], pathRegex: '/(?=x)' },
      { name: 'a', headers: { 'bad header': 'x' } },
    ]),
    [
      ['spec.matches[0].methods[0]', 'upper-case HTTP method'],
      ['spec.matches[0].pathRegex', 'lookahead'],
      ['spec.matches[1].headers["bad header"]', 'header name'],
    ],
  );
});
