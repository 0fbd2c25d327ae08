// The translator against what Weft's own compiler emits: every golden model, compiled for a
// sidecar node and sent through the real codec, must translate whole (no problem, nothing
// pending), and the result must hang together (every cluster a route names exists).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { compile, type NodeView } from '../../../../src/compiler/compile.js';
import type { MeshModel } from '../../../../src/registry/model.js';
import { translate } from '../../../../src/sidecar/config/translate.js';
import { formatProblem } from '../../../../src/sidecar/config/problems.js';
import type { RuntimeConfig } from '../../../../src/sidecar/runtime-config.js';
import { decodeResource, encodeResource } from '../../../../src/xds/codec.js';
import { TypeUrl, type ResourceSet } from '../../../../src/xds/types.js';
import { repoPath } from '../../../helpers/paths.js';

const dir = repoPath('test', 'golden', 'compiler');
const cases = readdirSync(dir)
  .filter((f) => f.endsWith('.input.json'))
  .map((f) => f.slice(0, -'.input.json'.length));

const DEFAULT_SIDECAR: NonNullable<NodeView['sidecar']> = {
  outbound: { host: '127.0.0.1', port: 15001 },
  inbound: { host: '0.0.0.0', port: 15006, appPort: 8080, protocol: 'HTTP' },
  tcpUpstreams: [],
};

function wire(set: ResourceSet, typeUrl: TypeUrl): Map<string, unknown> {
  return new Map(
    [...(set.get(typeUrl) ?? new Map<string, object>())].map(([name, obj]) => [
      name,
      decodeResource(typeUrl, encodeResource(typeUrl, obj)),
    ]),
  );
}

function translateCase(name: string): { config: RuntimeConfig; compiled: ResourceSet } {
  const input = JSON.parse(readFileSync(`${dir}/${name}.input.json`, 'utf8')) as {
    node: NodeView;
    model: MeshModel;
  };
  // Cases written for proxyless clients are compiled as a sidecar in the same namespace sees them.
  const node: NodeView = input.node.sidecar
    ? input.node
    : { namespace: input.node.namespace, sidecar: DEFAULT_SIDECAR };
  const compiled = compile(input.model, node);
  const result = translate({
    listeners: wire(compiled, TypeUrl.Listener),
    routes: wire(compiled, TypeUrl.RouteConfiguration),
    clusters: wire(compiled, TypeUrl.Cluster),
    endpoints: wire(compiled, TypeUrl.ClusterLoadAssignment),
    versions: { listeners: 'v', routes: 'v', clusters: 'v', endpoints: 'v' },
  });
  if (!result.ok) assert.fail(`${name}:\n${result.problems.map(formatProblem).join('\n')}`);
  assert.deepEqual(result.pending, { listeners: [], routeConfigs: [], endpoints: [] }, name);
  return { config: result.config, compiled };
}

test('there are compiler cases with sidecar nodes', () => {
  assert.ok(cases.filter((c) => c.startsWith('sidecar-')).length >= 3);
});

for (const name of cases) {
  test(`compiler output for a sidecar translates whole: ${name}`, () => {
    const { config, compiled } = translateCase(name);
    assert.equal(config.listeners.length, compiled.get(TypeUrl.Listener)?.size);
    for (const table of config.routes.values()) {
      for (const vh of table.virtualHosts) {
        for (const r of vh.routes) {
          if (r.action.kind !== 'forward') continue;
          for (const c of [
            ...r.action.clusters.map((x) => x.name),
            ...r.action.mirrors.map((m) => m.cluster),
          ]) {
            assert.ok(config.clusters.has(c), `${name}: route ${r.name} names cluster ${c}, which CDS lacks`);
          }
        }
      }
    }
  });
}

test('sidecar-http: outbound by RDS, inbound with an inline table and no timeout to the app', () => {
  const { config } = translateCase('sidecar-http');
  const outbound = config.listeners.find((l) => l.name === 'outbound');
  assert.deepEqual(outbound, {
    name: 'outbound',
    direction: 'outbound',
    host: '127.0.0.1',
    port: 15001,
    kind: 'http',
    codec: 'auto',
    routeConfig: 'outbound',
    pathNormalization: { normalize: true, mergeSlashes: true, escapedSlashes: 'keep' },
  });
  const inbound = config.listeners.find((l) => l.name === 'inbound|15006');
  assert.equal(inbound?.kind, 'http');
  assert.equal(inbound?.direction, 'inbound');
  const inTable = config.routes.get(inbound?.kind === 'http' ? inbound.routeConfig : '');
  const action = inTable?.virtualHosts[0]?.routes[0]?.action;
  assert.equal(action?.kind === 'forward' && action.timeoutMs, 0);
  const app = config.clusters.get('inbound|8080||');
  assert.deepEqual(app?.endpoints, [{ host: '127.0.0.1', port: 8080, weight: 1, healthy: true }]);
  for (const l of config.listeners.filter((x) => x.kind === 'tcp')) {
    assert.equal(config.clusters.get(l.cluster)?.protocol, 'tcp', l.name);
  }
});

test('sidecar-grpc: gRPC clusters speak HTTP/2', () => {
  const { config } = translateCase('sidecar-grpc');
  const grpcClusters = [...config.clusters.values()].filter((c) => c.name.includes('echo'));
  assert.ok(grpcClusters.length > 0);
  for (const c of grpcClusters) assert.equal(c.protocol, 'http2', c.name);
});

test('mTLS: STRICT and PERMISSIVE inbound listeners; sidecar endpoints over mTLS, others plaintext', () => {
  const strict = translateCase('sidecar-mtls-strict').config;
  const inbound = (c: RuntimeConfig) => c.listeners.find((l) => l.direction === 'inbound');
  assert.deepEqual(inbound(strict)?.tls, { mode: 'STRICT' });
  assert.equal(
    strict.listeners.find((l) => l.name === 'outbound')?.tls,
    undefined,
    'the app-facing listener stays plaintext',
  );
  const echo = strict.clusters.get('outbound|grpc||echo.default');
  assert.deepEqual(echo?.tls, {
    sni: 'outbound_.7070_._.echo.default.svc.cluster.local',
    expectedSpiffeIds: ['spiffe://weft.local/ns/default/sa/default'],
  });
  // The hand-registered second endpoint (no sidecar annotation) is reached in plaintext.
  assert.deepEqual(
    echo?.endpoints.map((e) => e.tls ?? false),
    [true, false],
  );
  assert.deepEqual(inbound(translateCase('sidecar-mtls-permissive').config)?.tls, { mode: 'PERMISSIVE' });
  // Without a trust domain (proxyless-style cases, older nodes) nothing is TLS.
  const plain = translateCase('sidecar-http').config;
  assert.equal(inbound(plain)?.tls, undefined);
  assert.ok([...plain.clusters.values()].every((c) => c.tls === undefined));
});
