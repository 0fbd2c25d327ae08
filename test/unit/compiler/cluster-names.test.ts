// Cluster names are what routes point at: one that changes while its service lives is a cluster
// removed under live routes, and requests fail until every proxy has the new routes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile, type NodeView } from '../../../src/compiler/compile.js';
import { buildModel, type HTTPRouteView, type WorkloadView } from '../../../src/registry/build-model.js';
import { TypeUrl } from '../../../src/xds/types.js';

const empty = { workloads: [], services: [], httpRoutes: [], grpcRoutes: [], trafficSplits: [] };
const sidecar: NodeView = {
  namespace: 'default',
  sidecar: { outbound: { host: '127.0.0.1', port: 15001 }, tcpUpstreams: [] },
};

function instance(name: string, port: number): WorkloadView {
  return {
    metadata: { name, namespace: 'default', labels: { app: 'be' } },
    spec: { address: '127.0.0.1', ports: [{ name: 'http', port, protocol: 'HTTP' }] },
  };
}

/** Every cluster a route of the set points at. */
function routedClusters(set: ReturnType<typeof compile>): string[] {
  return [...set.get(TypeUrl.RouteConfiguration)!.values()]
    .flatMap((rc) => JSON.stringify(rc).match(/"(?:cluster|name)":"outbound\|[^"]*"/g) ?? [])
    .map((m) => m.slice(m.indexOf(':') + 2, -1))
    .sort();
}

test('an implicit service keeps its cluster when the instance with the lowest port leaves', () => {
  const both = compile(
    buildModel({ ...empty, workloads: [instance('be-0', 15006), instance('be-1', 15007)] }),
    sidecar,
  );
  const one = compile(buildModel({ ...empty, workloads: [instance('be-1', 15007)] }), sidecar);
  for (const set of [both, one]) {
    assert.deepEqual([...set.get(TypeUrl.Cluster)!.keys()], ['outbound|http||be.default']);
    assert.deepEqual([...new Set(routedClusters(set))], ['outbound|http||be.default']);
  }
  const ports = (set: typeof both): number[] =>
    (
      set.get(TypeUrl.ClusterLoadAssignment)!.get('outbound|http||be.default') as {
        endpoints: Array<{
          lb_endpoints: Array<{ endpoint: { address: { socket_address: { port_value: number } } } }>;
        }>;
      }
    ).endpoints.flatMap((l) => l.lb_endpoints.map((e) => e.endpoint.address.socket_address.port_value));
  assert.deepEqual(ports(both), [15006, 15007]);
  assert.deepEqual(ports(one), [15007], 'only the endpoints change');
});

test('a route naming an implicit service port by number points at the named cluster', () => {
  const route: HTTPRouteView = {
    metadata: { name: 'r', namespace: 'default', creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: {
      parentRefs: [{ name: 'be' }],
      rules: [
        {
          backendRefs: [
            { name: 'be', port: 15006 },
            { name: 'be', port: 9 },
          ],
        },
      ],
    },
  };
  const set = compile(
    buildModel({ ...empty, workloads: [instance('be-0', 15006)], httpRoutes: [route] }),
    sidecar,
  );
  // Port 9 does not exist: its cluster is named by number and has no endpoints (fails closed).
  assert.deepEqual(
    [...new Set(routedClusters(set))],
    ['outbound|9||be.default', 'outbound|http||be.default'],
  );
});

test('a declared Service port keeps its number in the cluster name', () => {
  const set = compile(
    buildModel({
      ...empty,
      workloads: [instance('be-0', 15006)],
      services: [
        {
          metadata: { name: 'api', namespace: 'default' },
          spec: { selector: { app: 'be' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
        },
      ],
    }),
    sidecar,
  );
  assert.ok(set.get(TypeUrl.Cluster)!.has('outbound|80||api.default'));
});
