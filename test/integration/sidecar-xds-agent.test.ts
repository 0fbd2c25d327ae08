// The sidecar's xDS agent against a real in-process ADS server over gRPC: configs on valid
// updates, the trust bundle (SDS ROOTCA) handed on once ACKed, NACKs that name the field and keep
// the config or bundle in force (one per resource type),
// RDS/EDS subscriptions that follow the accepted listeners and clusters, and a control-plane
// restart on the same port that the agent rides out with its last good config.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../src/log.js';
import { XdsAgent } from '../../src/sidecar/xds-agent.js';
import type { RuntimeConfig } from '../../src/sidecar/runtime-config.js';
import { AdsServer } from '../../src/xds/ads-server.js';
import { freePort } from '../../src/free-port.js';
import { TypeUrl, type ResourceSet } from '../../src/xds/types.js';
import { MutableConfigSource } from '../helpers/xds-peer.js';
import {
  ADS,
  assignment,
  edsCluster,
  httpListener,
  routeConfig,
  tcpListener,
} from '../unit/sidecar/config/fixtures.js';
import { makeTestCa } from '../unit/ca/ca-fixtures.js';

const ROOT = (await makeTestCa({ name: 'Agent Test Root' })).certificatePem;
const rootca = (pem: string): object => ({
  name: 'ROOTCA',
  validation_context: { trusted_ca: { inline_bytes: Buffer.from(pem) } },
});

async function until(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function initial(): ResourceSet {
  return new Map<TypeUrl, Map<string, object>>([
    [TypeUrl.Listener, new Map([['outbound', httpListener('outbound', 15001)]])],
    [
      TypeUrl.RouteConfiguration,
      new Map([
        [
          'outbound',
          routeConfig('outbound', [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'c' } }]),
        ],
      ]),
    ],
    [TypeUrl.Cluster, new Map([['c', edsCluster('c')]])],
    [TypeUrl.ClusterLoadAssignment, new Map([['c', assignment('c', [{ host: '10.0.0.1', port: 80 }])]])],
    [TypeUrl.Secret, new Map([['ROOTCA', rootca(ROOT)]])],
  ]);
}

let source: MutableConfigSource;
let server: AdsServer;
let port: number;
let agent: XdsAgent;
const configs: RuntimeConfig[] = [];
const bundles: string[] = [];

before(async () => {
  source = new MutableConfigSource(initial());
  server = new AdsServer(source, { logger: silentLogger(), closeGraceMs: 200 });
  // Restarted on this port later: one the kernel does not hand out meanwhile (see freePort).
  ({ port } = await server.bind(`127.0.0.1:${await freePort()}`));
  agent = new XdsAgent({
    address: `127.0.0.1:${port}`,
    node: { id: 'sidecar-1', cluster: 'web', metadata: { NAMESPACE: 'shop' } },
    backoff: { baseMs: 20, maxMs: 200 },
    logger: silentLogger(),
  });
  agent.on('config', (rc) => configs.push(rc));
  agent.on('trustBundle', (pem) => bundles.push(pem));
  agent.start();
});

after(async () => {
  agent.close();
  await server.close();
});

function proxy(): ReturnType<AdsServer['listProxies']>[number] | undefined {
  return server.listProxies().find((p) => p.node.id === 'sidecar-1');
}

test('a complete config arrives: listeners, routes, clusters with endpoints; ready; node metadata passed', async () => {
  await until(() => agent.ready, 'ready');
  const rc = agent.config!;
  assert.deepEqual(
    rc.listeners.map((l) => l.name),
    ['outbound'],
  );
  assert.ok(rc.routes.has('outbound'));
  assert.deepEqual(rc.clusters.get('c')?.endpoints, [
    { host: '10.0.0.1', port: 80, weight: 1, healthy: true },
  ]);
  assert.equal(configs.at(-1), rc);
  const p = proxy()!;
  assert.deepEqual(p.node.metadata, { NAMESPACE: 'shop', WEFT_PROXY_TYPE: 'sidecar' });
  assert.equal(p.types[TypeUrl.Listener]?.wildcard, true);
  assert.equal(p.types[TypeUrl.Cluster]?.wildcard, true);
  assert.deepEqual(p.types[TypeUrl.RouteConfiguration]?.names, ['outbound']);
  assert.deepEqual(p.types[TypeUrl.ClusterLoadAssignment]?.names, ['c']);
  const dump = agent.configDump();
  assert.equal(dump.ready, true);
  assert.equal(dump.listeners.version, String(source.version));
  assert.deepEqual(Object.keys(dump.routes.resources), ['outbound']);
  assert.equal(dump.lastNack, undefined);
  // The trust bundle is asked for by name and handed on (the secret `default` never is).
  assert.deepEqual(p.types[TypeUrl.Secret]?.names, ['ROOTCA']);
  await until(() => bundles.length > 0, 'the trust bundle');
  assert.equal(bundles[0], ROOT);
  assert.deepEqual(Object.keys(agent.configDump().secrets.resources), ['ROOTCA']);
});

const BAD: Array<{ typeUrl: TypeUrl; name: string; obj: object; field: string }> = [
  {
    typeUrl: TypeUrl.Listener,
    name: 'outbound',
    obj: httpListener('outbound', 15001, { use_remote_address: { value: true } }),
    field:
      'Listener "outbound": filter_chains[0].filters[0].typed_config.use_remote_address is not supported by the Weft sidecar',
  },
  {
    typeUrl: TypeUrl.RouteConfiguration,
    name: 'outbound',
    obj: routeConfig('outbound', [{ match: { prefix: '/' }, route: { cluster: 'c', retry_policy: {} } }]),
    field:
      'RouteConfiguration "outbound": virtual_hosts[0].routes[0].route.retry_policy is not supported by the Weft sidecar',
  },
  {
    typeUrl: TypeUrl.Cluster,
    name: 'c',
    obj: edsCluster('c', { lb_policy: 'RING_HASH' }),
    field:
      'Cluster "c": lb_policy is RING_HASH, which is not supported by the Weft sidecar (supported: ROUND_ROBIN, LEAST_REQUEST)',
  },
  {
    typeUrl: TypeUrl.ClusterLoadAssignment,
    name: 'c',
    obj: { cluster_name: 'c', endpoints: [{ priority: 1 }] },
    field:
      'ClusterLoadAssignment "c": endpoints[0].priority: 1 is not supported by the Weft sidecar (only priority 0)',
  },
  {
    typeUrl: TypeUrl.Secret,
    name: 'ROOTCA',
    obj: { name: 'ROOTCA', validation_context: { trusted_ca: { inline_string: 'no roots' } } },
    field: 'Secret "ROOTCA": validation_context.trusted_ca.inline_string: holds no certificate',
  },
];

for (const bad of BAD) {
  test(`an unsupported ${bad.typeUrl.split('.').pop()} is NACKed naming the field; the config in force stays`, async () => {
    await until(() => agent.ready, 'ready');
    const before = agent.config!;
    const good = source.resources.get(bad.typeUrl)!.get(bad.name)!;
    const eventsBefore = configs.length;
    const bundlesBefore = bundles.length;
    source.set(bad.typeUrl, bad.name, bad.obj);
    const rejected = String(source.version);
    await until(() => proxy()?.types[bad.typeUrl]?.lastNack?.version === rejected, 'NACK at the server');
    const nack = proxy()!.types[bad.typeUrl]!.lastNack!;
    assert.equal(nack.message, bad.field);
    assert.equal(agent.config, before, 'the previous RuntimeConfig stays in force');
    assert.equal(configs.length, eventsBefore);
    assert.equal(bundles.length, bundlesBefore, 'the trust bundle in force stays');
    assert.equal(agent.lastNack()?.message, bad.field);
    assert.equal(agent.lastNack()?.problems.length, 1);
    assert.equal(agent.configDump().lastNack?.typeUrl, bad.typeUrl);

    source.set(bad.typeUrl, bad.name, good);
    const fixed = String(source.version);
    await until(() => proxy()?.types[bad.typeUrl]?.ackedVersion === fixed, 'ACK of the restored resource');
    if (bad.typeUrl === TypeUrl.Secret) assert.equal(bundles.at(-1), ROOT);
    else assert.notEqual(agent.config, before);
  });
}

test('subscriptions follow: a new route config name and a new EDS cluster are subscribed; old ones dropped', async () => {
  await until(() => agent.ready, 'ready');
  const next = initial();
  next
    .get(TypeUrl.Listener)!
    .set(
      'outbound',
      httpListener('outbound', 15001, { rds: { route_config_name: 'next', config_source: ADS } }),
    );
  next.get(TypeUrl.Listener)!.set('outbound|15432', tcpListener('outbound|15432', 15432, 'db'));
  next.set(
    TypeUrl.RouteConfiguration,
    new Map([['next', routeConfig('next', [{ match: { prefix: '/' }, route: { cluster: 'c' } }])]]),
  );
  next.get(TypeUrl.Cluster)!.set('db', edsCluster('db'));
  next.get(TypeUrl.ClusterLoadAssignment)!.set('db', assignment('db', [{ host: '10.0.0.9', port: 5432 }]));
  source.replace(next);
  await until(
    () =>
      agent.config?.routes.has('next') === true && agent.config.clusters.get('db')?.endpoints.length === 1,
    'the new route config and the db endpoints',
  );
  const rc = agent.config!;
  assert.deepEqual([...rc.routes.keys()], ['next']);
  assert.deepEqual(
    rc.listeners.map((l) => l.name),
    ['outbound', 'outbound|15432'],
  );
  assert.equal(rc.clusters.get('db')?.protocol, 'tcp');
  assert.deepEqual(agent.configDump().pending, { listeners: [], routeConfigs: [], endpoints: [] });
  await until(
    () => proxy()?.types[TypeUrl.RouteConfiguration]?.names.join() === 'next',
    'RDS names at the server',
  );
  assert.deepEqual(proxy()!.types[TypeUrl.ClusterLoadAssignment]?.names, ['c', 'db']);
});

test('control plane down: the agent keeps its config and readiness; restarted on the same port, it resyncs', async () => {
  await until(() => agent.ready && agent.connected, 'ready and connected');
  const kept = agent.config!;
  await server.close();
  await until(() => !agent.connected, 'disconnect');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(agent.config, kept);
  assert.equal(agent.ready, true);
  assert.equal(agent.readiness().ready, true);

  const changed = initial();
  changed.get(TypeUrl.ClusterLoadAssignment)!.set('c', assignment('c', [{ host: '10.0.0.2', port: 8080 }]));
  source.replace(changed);
  server = new AdsServer(source, { logger: silentLogger(), closeGraceMs: 200 });
  await server.bind(`127.0.0.1:${port}`);
  await until(
    () =>
      agent.config?.clusters.get('c')?.endpoints[0]?.host === '10.0.0.2' &&
      agent.config.routes.has('outbound'),
    'resync after restart',
    10_000,
  );
  assert.ok(agent.connected);
  assert.deepEqual(
    agent.config!.listeners.map((l) => l.name),
    ['outbound'],
  );
  await until(
    () => proxy()?.types[TypeUrl.RouteConfiguration]?.names.join() === 'outbound',
    'RDS resubscribed',
  );
});
