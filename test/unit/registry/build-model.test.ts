import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildModel, parseGatewayDuration, type WorkloadView } from '../../../src/registry/build-model.js';

function workload(
  name: string,
  labels: Record<string, string>,
  port: number,
  address = '127.0.0.1',
): WorkloadView {
  return {
    metadata: { name, namespace: 'default', labels },
    spec: { address, ports: [{ name: 'grpc', port, protocol: 'GRPC' }], serviceAccount: 'echo' },
  };
}

const empty = { workloads: [], services: [], httpRoutes: [], grpcRoutes: [], trafficSplits: [] };

test('workloads labelled app: X make service X with every instance as an endpoint', () => {
  const model = buildModel({
    ...empty,
    workloads: [workload('echo-2', { app: 'echo' }, 50052), workload('echo-1', { app: 'echo' }, 50051)],
  });
  assert.equal(model.services.length, 1);
  const svc = model.services[0]!;
  assert.deepEqual([svc.namespace, svc.name, svc.implicit], ['default', 'echo', true]);
  assert.deepEqual(
    svc.ports.map((p) => [p.port, p.name, p.protocol, p.endpoints.map((e) => `${e.workload}@${e.port}`)]),
    [[50051, 'grpc', 'GRPC', ['default/echo-1@50051', 'default/echo-2@50052']]],
    'ports with the same name merge into one service port numbered by the lowest instance port',
  );
});

test('an explicit Service selects by labels, maps targetPort by name, and wins over the implicit one', () => {
  const model = buildModel({
    ...empty,
    workloads: [
      workload('echo-1', { app: 'echo', version: 'v1' }, 50051),
      workload('echo-2', { app: 'echo', version: 'v2' }, 50052),
    ],
    services: [
      {
        metadata: { name: 'echo-v2', namespace: 'default' },
        spec: {
          selector: { app: 'echo', version: 'v2' },
          ports: [{ name: 'grpc', port: 7070, targetPort: 'grpc' }],
        },
      },
      {
        metadata: { name: 'echo', namespace: 'default' },
        spec: { selector: { app: 'echo' }, ports: [{ name: 'grpc', port: 7070, targetPort: 'grpc' }] },
      },
      { metadata: { name: 'manual', namespace: 'default' }, spec: { ports: [{ port: 80 }] } },
    ],
  });
  const byName = new Map(model.services.map((s) => [s.name, s]));
  assert.equal(byName.get('echo')!.implicit, false);
  assert.deepEqual(
    byName.get('echo')!.ports[0]!.endpoints.map((e) => `${e.address}:${e.port}`),
    ['127.0.0.1:50051', '127.0.0.1:50052'],
  );
  assert.deepEqual(
    byName.get('echo-v2')!.ports[0]!.endpoints.map((e) => e.port),
    [50052],
  );
  assert.equal(byName.get('echo-v2')!.ports[0]!.protocol, 'GRPC', 'protocol inferred from the workload port');
  assert.deepEqual(byName.get('manual')!.ports[0]!.endpoints, [], 'no selector selects nothing');
});

test('HTTPRoute, GRPCRoute and TrafficSplit become bindings ordered oldest first', () => {
  const model = buildModel({
    ...empty,
    httpRoutes: [
      {
        metadata: { name: 'b-route', namespace: 'default', creationTimestamp: '2026-02-01T00:00:00Z' },
        spec: {
          parentRefs: [{ kind: 'Service', name: 'echo', port: 7070 }],
          rules: [
            {
              matches: [{ headers: [{ name: 'x-canary', value: 'true' }] }],
              backendRefs: [{ name: 'echo-v2' }],
              timeouts: { request: '1m30s' },
            },
          ],
        },
      },
    ],
    grpcRoutes: [
      {
        metadata: { name: 'g', namespace: 'default', creationTimestamp: '2026-01-01T00:00:00Z' },
        spec: {
          parentRefs: [{ name: 'echo' }],
          rules: [
            { matches: [{ method: { service: 'weft.Echo', method: 'Say' } }], backendRefs: [{ name: 'a' }] },
            { matches: [{ method: { service: 'weft.Echo' } }], backendRefs: [{ name: 'b' }] },
            { matches: [{ method: { method: 'Say.x' } }], backendRefs: [{ name: 'c' }] },
          ],
        },
      },
    ],
    trafficSplits: [
      {
        metadata: { name: 'ts', namespace: 'default', creationTimestamp: '2026-03-01T00:00:00Z' },
        spec: {
          service: 'echo',
          backends: [
            { service: 'echo-v1', weight: 9 },
            { service: 'echo-v2', weight: 1 },
          ],
        },
      },
    ],
  });
  assert.deepEqual(
    model.routes.map((r) => r.source.kind),
    ['GRPCRoute', 'HTTPRoute', 'TrafficSplit'],
  );
  const grpc = model.routes[0]!;
  assert.deepEqual(
    grpc.rules.map((r) => r.matches[0]!.path),
    [
      { type: 'Exact', value: '/weft.Echo/Say' },
      { type: 'PathPrefix', value: '/weft.Echo' },
      { type: 'RegularExpression', value: '/[^/]+/Say\\.x' },
    ],
  );
  assert.deepEqual(
    grpc.rules.map((r) => r.matches[0]!.grpc),
    [
      { service: 'weft.Echo', method: 'Say' },
      { service: 'weft.Echo', method: '' },
      { service: '', method: 'Say.x' },
    ],
    'service and method kept as written, for GRPCRoute precedence',
  );
  const http = model.routes[1]!;
  assert.deepEqual(http.parent, { namespace: 'default', name: 'echo', port: 7070 });
  assert.deepEqual(http.rules[0]!.matches[0]!.path, { type: 'PathPrefix', value: '/' });
  assert.deepEqual(http.rules[0]!.matches[0]!.headers, [{ type: 'Exact', name: 'x-canary', value: 'true' }]);
  assert.equal(http.rules[0]!.timeoutMs, 90_000);
  assert.deepEqual(
    model.routes[2]!.rules[0]!.backends.map((b) => [b.name, b.weight]),
    [
      ['echo-v1', 9],
      ['echo-v2', 1],
    ],
  );
});

test('GRPCRoute regular expressions keep alternatives inside their path segment', () => {
  const model = buildModel({
    ...empty,
    grpcRoutes: [
      {
        metadata: { name: 'g', namespace: 'default' },
        spec: {
          parentRefs: [{ name: 'echo' }],
          rules: [
            {
              matches: [
                { method: { type: 'RegularExpression', service: 'a\\.A|a\\.B', method: 'Get|List' } },
              ],
              backendRefs: [{ name: 'a' }],
            },
          ],
        },
      },
    ],
  });
  const path = model.routes[0]!.rules[0]!.matches[0]!.path!;
  assert.equal(path.value, '/(?:a\\.A|a\\.B)/(?:Get|List)');
  const full = new RegExp(`^${path.value}$`);
  for (const p of ['/a.A/Get', '/a.B/List', '/a.A/List']) assert.ok(full.test(p), p);
  for (const p of ['/a.C/Get', '/a.A/Put', '/a.A/Get/x']) assert.ok(!full.test(p), p);
});

test('Gateway API durations', () => {
  assert.equal(parseGatewayDuration('1h'), 3_600_000);
  assert.equal(parseGatewayDuration('1m30s'), 90_000);
  assert.equal(parseGatewayDuration('250ms'), 250);
  assert.equal(parseGatewayDuration('0s'), 0);
});

test('HTTPRoute filters map into the model: headers, mirror percent or fraction, redirect, rewrite', () => {
  const model = buildModel({
    ...empty,
    httpRoutes: [
      {
        metadata: { name: 'f', namespace: 'default' },
        spec: {
          parentRefs: [{ name: 'web' }],
          rules: [
            {
              backendRefs: [{ name: 'web' }],
              filters: [
                {
                  type: 'RequestHeaderModifier',
                  requestHeaderModifier: { set: [{ name: 'x-a', value: '1' }] },
                },
                {
                  type: 'RequestMirror',
                  requestMirror: {
                    backendRef: { name: 'shadow' },
                    fraction: { numerator: 1, denominator: 8 },
                  },
                },
                {
                  type: 'URLRewrite',
                  urlRewrite: { path: { type: 'ReplaceFullPath', replaceFullPath: '/x' } },
                },
              ],
            },
            {
              filters: [
                {
                  type: 'RequestRedirect',
                  requestRedirect: {
                    scheme: 'https',
                    path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/n' },
                  },
                },
              ],
            },
          ],
        },
      },
    ],
  });
  const [first, second] = model.routes[0]!.rules;
  assert.deepEqual(first!.filters, {
    requestHeaders: { set: [{ name: 'x-a', value: '1' }], add: [], remove: [] },
    mirrors: [{ namespace: 'default', name: 'shadow', percent: 12.5 }],
    rewrite: { path: { type: 'ReplaceFullPath', value: '/x' } },
  });
  assert.deepEqual(second!.filters, {
    redirect: { statusCode: 302, scheme: 'https', path: { type: 'ReplacePrefixMatch', value: '/n' } },
  });
  assert.deepEqual(second!.backends, []);
});

test('one port number is one service port even when instances name it differently', () => {
  const w1: WorkloadView = {
    metadata: { name: 'a-1', namespace: 'default', labels: { app: 'a' } },
    spec: { address: '10.0.0.1', ports: [{ name: 'http', port: 8080, protocol: 'HTTP' }] },
  };
  const w2: WorkloadView = {
    metadata: { name: 'a-2', namespace: 'default', labels: { app: 'a' } },
    spec: { address: '10.0.0.2', ports: [{ port: 8080, protocol: 'HTTP' }] },
  };
  const [svc] = buildModel({ ...empty, workloads: [w1, w2] }).services;
  assert.deepEqual(
    svc!.ports.map((p) => [p.port, p.name, p.endpoints.map((e) => e.address)]),
    [[8080, 'http', ['10.0.0.1', '10.0.0.2']]],
  );
});

test('an app label that is no DNS label makes no implicit service (it could shadow svc.ns names)', () => {
  const model = buildModel({
    ...empty,
    workloads: [
      workload('x-1', { app: 'foo.bar' }, 80),
      workload('y-1', { app: 'Foo' }, 81),
      workload('z-1', { app: 'ok' }, 82),
    ],
  });
  assert.deepEqual(
    model.services.map((s) => s.name),
    ['ok'],
  );
});

test('two workloads at one address:port are one endpoint (xDS clients reject duplicates)', () => {
  const old = workload('be-old', { app: 'be' }, 15006);
  const fresh = workload('be-new', { app: 'be' }, 15006);
  const model = buildModel({
    ...empty,
    workloads: [fresh, old],
    services: [
      {
        metadata: { name: 'be-all', namespace: 'default' },
        spec: { selector: { app: 'be' }, ports: [{ name: 'grpc', port: 80, targetPort: 'grpc' }] },
      },
    ],
  });
  for (const svc of model.services) {
    assert.deepEqual(
      svc.ports[0]!.endpoints.map((e) => `${e.workload}@${e.address}:${e.port}`),
      ['default/be-new@127.0.0.1:15006'],
      svc.name,
    );
  }
});

test('an SMI TrafficTarget becomes an ALLOW binding on its service account; missing routes allow nothing', () => {
  const meta = (name: string) => ({ name, namespace: 'default' });
  const model = buildModel({
    workloads: [],
    services: [],
    httpRoutes: [],
    grpcRoutes: [],
    trafficSplits: [],
    httpRouteGroups: [
      {
        metadata: meta('routes'),
        spec: {
          matches: [
            { name: 'metrics', methods: ['GET'], pathRegex: '/metrics' },
            { name: 'all', methods: ['*'] },
            { name: 'probe', headers: { 'x-probe': '1' } },
          ],
        },
      },
    ],
    trafficTargets: [
      {
        metadata: meta('a-metrics'),
        spec: {
          destination: { name: 'service-a' },
          sources: [{ name: 'prometheus', namespace: 'monitoring' }, { name: 'bot' }],
          rules: [{ name: 'routes', matches: ['metrics', 'probe', 'nonexistent'] }],
        },
      },
      {
        metadata: meta('b-all'),
        spec: {
          destination: { name: 'service-b' },
          sources: [{ name: 'x' }],
          rules: [{ name: 'routes', matches: ['all'] }],
        },
      },
      {
        metadata: meta('c-missing'),
        spec: {
          destination: { name: 'service-c' },
          sources: [{ name: 'x' }],
          rules: [{ name: 'no-such-group' }],
        },
      },
    ],
  });
  assert.deepEqual(model.authorization, [
    {
      source: { kind: 'TrafficTarget', namespace: 'default', name: 'a-metrics' },
      target: { namespace: 'default', name: 'service-a', kind: 'ServiceAccount' },
      action: 'ALLOW',
      rules: [
        {
          from: [
            {
              serviceAccounts: [
                { namespace: 'monitoring', name: 'prometheus' },
                { namespace: 'default', name: 'bot' },
              ],
            },
          ],
          to: [{ methods: ['GET'], pathRegex: '/metrics' }, { headers: [{ name: 'x-probe', value: '1' }] }],
        },
      ],
    },
    {
      source: { kind: 'TrafficTarget', namespace: 'default', name: 'b-all' },
      target: { namespace: 'default', name: 'service-b', kind: 'ServiceAccount' },
      action: 'ALLOW',
      rules: [{ from: [{ serviceAccounts: [{ namespace: 'default', name: 'x' }] }] }],
    },
    {
      source: { kind: 'TrafficTarget', namespace: 'default', name: 'c-missing' },
      target: { namespace: 'default', name: 'service-c', kind: 'ServiceAccount' },
      action: 'ALLOW',
      rules: [],
    },
  ]);
});
