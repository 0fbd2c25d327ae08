// The ADS server over real gRPC: ACK/NACK bookkeeping, stale nonces, change-only pushes,
// subscription changes, wildcard, reconnect resync. Checked with a raw DiscoveryRequest stream
// (to control every field) and with Weft's own AdsClient.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { silentLogger } from '../../src/log.js';
import { AdsServer } from '../../src/xds/ads-server.js';
import { freePort } from '../../src/free-port.js';
import { AdsClient } from '../../src/xds/ads-client.js';
import {
  decodeDiscoveryResponse,
  decodeResource,
  encodeDiscoveryRequest,
  type DiscoveryResponseMessage,
} from '../../src/xds/codec.js';
import { TypeUrl } from '../../src/xds/types.js';
import { MutableConfigSource, edsCluster, loadAssignment, proxylessResources } from '../helpers/xds-peer.js';

const METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

/** A DiscoveryRequest stream where the test writes every field itself. */
class RawStream {
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<object, DiscoveryResponseMessage>;
  private readonly queue: DiscoveryResponseMessage[] = [];
  private waiter: (() => void) | undefined;
  status: grpc.StatusObject | undefined;

  constructor(address: string) {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure());
    this.call = this.client.makeBidiStreamRequest(
      METHOD,
      (r: object) => Buffer.from(encodeDiscoveryRequest(r)),
      decodeDiscoveryResponse,
    );
    this.call.on('data', (r: DiscoveryResponseMessage) => {
      this.queue.push(r);
      this.waiter?.();
    });
    this.call.on('status', (s) => {
      this.status = s;
      this.waiter?.();
    });
    this.call.on('error', () => {});
  }

  send(req: object): void {
    this.call.write(req);
  }

  async next(timeoutMs = 3000): Promise<DiscoveryResponseMessage> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      if (this.status) throw new Error(`stream ended: ${this.status.code} ${this.status.details}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no DiscoveryResponse in time');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.queue.shift()!;
  }

  pending(): number {
    return this.queue.length;
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

function names(res: DiscoveryResponseMessage): string[] {
  return res.resources
    .map((r) => decodeResource(res.type_url, r.value))
    .map((o) => String(o.name ?? o.cluster_name))
    .sort();
}

const node = { id: 'proxy-1', cluster: 'web', metadata: structOf({ app: 'web' }) };
function structOf(json: Record<string, string>): object {
  return { fields: Object.fromEntries(Object.entries(json).map(([k, v]) => [k, { stringValue: v }])) };
}

let source: MutableConfigSource;
let server: AdsServer;
let address: string;
const open: { close(): void }[] = [];

before(async () => {
  source = new MutableConfigSource(proxylessResources({ backends: [{ host: '127.0.0.1', port: 1 }] }));
  server = new AdsServer(source, { logger: silentLogger(), closeGraceMs: 500 });
  const { port } = await server.bind('127.0.0.1:0');
  address = `127.0.0.1:${port}`;
});

after(async () => {
  for (const c of open) c.close();
  await server.close();
});

function raw(): RawStream {
  const s = new RawStream(address);
  open.push(s);
  return s;
}

test('first request carries the node; ACK records the version; ProxyStatus shows it', async () => {
  const s = raw();
  s.send({ node, type_url: TypeUrl.Cluster, resource_names: [] });
  const res = await s.next();
  assert.equal(res.type_url, TypeUrl.Cluster);
  assert.equal(res.version_info, String(source.version));
  assert.deepEqual(names(res), ['echo-cluster']);
  const acked = new Promise((resolve) => server.once('ack', resolve));
  s.send({ type_url: TypeUrl.Cluster, version_info: res.version_info, response_nonce: res.nonce });
  await acked;
  const status = server.listProxies().find((p) => p.node.id === 'proxy-1');
  assert.ok(status);
  assert.equal(status.node.cluster, 'web');
  assert.deepEqual(status.node.metadata, { app: 'web' });
  const cds = status.types[TypeUrl.Cluster];
  assert.ok(cds);
  assert.equal(cds.wildcard, true);
  assert.equal(cds.ackedVersion, res.version_info);
  assert.equal(cds.pending, false);
  assert.equal(cds.lastSent?.nonce, res.nonce);
  s.close();
});

test('NACK is recorded with version, message and time; a stale nonce is ignored', async () => {
  const s = raw();
  s.send({
    node: { id: 'proxy-nack' },
    type_url: TypeUrl.ClusterLoadAssignment,
    resource_names: ['echo-cluster'],
  });
  const first = await s.next();
  s.send({
    type_url: TypeUrl.ClusterLoadAssignment,
    resource_names: ['echo-cluster'],
    version_info: first.version_info,
    response_nonce: first.nonce,
  });
  source.set(
    TypeUrl.ClusterLoadAssignment,
    'echo-cluster',
    loadAssignment('echo-cluster', [{ host: '127.0.0.1', port: 2 }]),
  );
  const second = await s.next();
  assert.notEqual(second.nonce, first.nonce);

  // A request answering the older response is stale: neither ACK nor NACK.
  let events = 0;
  const count = (): void => void events++;
  server.on('ack', count);
  server.on('nack', count);
  s.send({
    type_url: TypeUrl.ClusterLoadAssignment,
    resource_names: ['echo-cluster'],
    response_nonce: first.nonce,
    error_detail: { code: 3, message: 'stale complaint' },
  });
  const nacked = new Promise<{ message: string; version: string }>((resolve) => server.once('nack', resolve));
  s.send({
    type_url: TypeUrl.ClusterLoadAssignment,
    resource_names: ['echo-cluster'],
    version_info: first.version_info,
    response_nonce: second.nonce,
    error_detail: { code: 3, message: 'port 2 is not allowed' },
  });
  const nack = await nacked;
  server.off('ack', count);
  server.off('nack', count);
  assert.equal(events, 1, 'only the NACK for the latest nonce counted');
  assert.equal(nack.message, 'port 2 is not allowed');
  const eds = server.listProxies().find((p) => p.node.id === 'proxy-nack')?.types[
    TypeUrl.ClusterLoadAssignment
  ];
  assert.ok(eds?.lastNack);
  assert.equal(eds.lastNack.version, second.version_info);
  assert.equal(eds.lastNack.nonce, second.nonce);
  assert.equal(eds.lastNack.message, 'port 2 is not allowed');
  assert.ok(Date.now() - Date.parse(eds.lastNack.at) < 5000);
  assert.equal(eds.ackedVersion, first.version_info, 'the proxy still runs the last good version');
  assert.equal(eds.pending, false);
  s.close();
});

test('only changed resources are pushed; RDS/EDS carry only the changed ones, CDS carries all', async () => {
  source.set(TypeUrl.Cluster, 'other', edsCluster('other'));
  source.set(
    TypeUrl.ClusterLoadAssignment,
    'other',
    loadAssignment('other', [{ host: '127.0.0.1', port: 3 }]),
  );
  const s = raw();
  s.send({ node: { id: 'proxy-push' }, type_url: TypeUrl.Cluster });
  const cds = await s.next();
  assert.deepEqual(names(cds), ['echo-cluster', 'other']);
  s.send({ type_url: TypeUrl.Cluster, version_info: cds.version_info, response_nonce: cds.nonce });
  s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: ['echo-cluster', 'other'] });
  const eds = await s.next();
  assert.deepEqual(names(eds), ['echo-cluster', 'other']);
  s.send({
    type_url: TypeUrl.ClusterLoadAssignment,
    resource_names: ['echo-cluster', 'other'],
    version_info: eds.version_info,
    response_nonce: eds.nonce,
  });

  // A change notification with identical content sends nothing; the next real change is the
  // next response, which proves nothing came in between.
  source.touch();
  // Let the push pass for the touch run on its own (changes in one tick are coalesced).
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  source.set(
    TypeUrl.ClusterLoadAssignment,
    'other',
    loadAssignment('other', [{ host: '127.0.0.1', port: 4 }]),
  );
  const edsUpdate = await s.next();
  assert.equal(edsUpdate.type_url, TypeUrl.ClusterLoadAssignment);
  assert.deepEqual(names(edsUpdate), ['other'], 'EDS carries only the changed assignment');
  s.send({
    type_url: TypeUrl.ClusterLoadAssignment,
    resource_names: ['echo-cluster', 'other'],
    version_info: edsUpdate.version_info,
    response_nonce: edsUpdate.nonce,
  });

  source.set(TypeUrl.Cluster, 'other', { ...edsCluster('other'), connect_timeout: { seconds: 5, nanos: 0 } });
  const cdsUpdate = await s.next();
  assert.equal(cdsUpdate.type_url, TypeUrl.Cluster);
  assert.deepEqual(names(cdsUpdate), ['echo-cluster', 'other'], 'CDS carries every cluster');
  s.send({
    type_url: TypeUrl.Cluster,
    version_info: cdsUpdate.version_info,
    response_nonce: cdsUpdate.nonce,
  });

  source.set(TypeUrl.Cluster, 'other', undefined);
  const cdsDelete = await s.next();
  assert.deepEqual(names(cdsDelete), ['echo-cluster'], 'deletion is an omission in CDS');
  assert.equal(s.pending(), 0);
  s.close();
  source.set(TypeUrl.ClusterLoadAssignment, 'other', undefined);
});

test('a subscription change is answered at once with the newly requested resources', async () => {
  source.set(TypeUrl.RouteConfiguration, 'r2', { name: 'r2', virtual_hosts: [] });
  const s = raw();
  s.send({ node: { id: 'proxy-sub' }, type_url: TypeUrl.RouteConfiguration, resource_names: ['echo-route'] });
  const first = await s.next();
  assert.deepEqual(names(first), ['echo-route']);
  s.send({
    type_url: TypeUrl.RouteConfiguration,
    resource_names: ['echo-route', 'r2', 'missing'],
    version_info: first.version_info,
    response_nonce: first.nonce,
  });
  const second = await s.next();
  assert.deepEqual(names(second), ['r2']);
  const status = server.listProxies().find((p) => p.node.id === 'proxy-sub')?.types[
    TypeUrl.RouteConfiguration
  ];
  assert.deepEqual(status?.names, ['echo-route', 'missing', 'r2']);
  assert.equal(status?.wildcard, false);
  // The missing one is sent as soon as it exists.
  s.send({
    type_url: TypeUrl.RouteConfiguration,
    resource_names: ['echo-route', 'r2', 'missing'],
    version_info: second.version_info,
    response_nonce: second.nonce,
  });
  source.set(TypeUrl.RouteConfiguration, 'missing', { name: 'missing', virtual_hosts: [] });
  assert.deepEqual(names(await s.next()), ['missing']);
  s.close();
  source.set(TypeUrl.RouteConfiguration, 'missing', undefined);
  source.set(TypeUrl.RouteConfiguration, 'r2', undefined);
});

test('explicit "*" subscribes to all; a listener subscription by name gets only that one', async () => {
  source.set(TypeUrl.Listener, 'second', { name: 'second', api_listener: {} });
  const s = raw();
  s.send({ node: { id: 'proxy-wild' }, type_url: TypeUrl.Listener, resource_names: ['*'] });
  assert.deepEqual(names(await s.next()), ['echo', 'second']);
  const t = raw();
  t.send({ node: { id: 'proxy-named' }, type_url: TypeUrl.Listener, resource_names: ['echo', 'absent'] });
  assert.deepEqual(names(await t.next()), ['echo']);
  s.close();
  t.close();
  source.set(TypeUrl.Listener, 'second', undefined);
});

test('a stream without node in its first request is refused', async () => {
  const s = raw();
  s.send({ type_url: TypeUrl.Cluster });
  await assert.rejects(s.next(), /stream ended: 3 .*node/);
});

test('Delta ADS answers UNIMPLEMENTED', async () => {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  try {
    const call = client.makeBidiStreamRequest(
      '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources',
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    const status = await new Promise<grpc.StatusObject>((resolve) => {
      call.on('status', resolve);
      call.on('error', () => {});
      call.on('data', () => {});
    });
    assert.equal(status.code, grpc.status.UNIMPLEMENTED);
    assert.match(status.details, /state-of-the-world/);
  } finally {
    client.close();
  }
});

test('AdsClient: applies, NACKs keeping the last good set, resubscribes, resyncs after reconnect', async () => {
  const ownSource = new MutableConfigSource(
    proxylessResources({ backends: [{ host: '127.0.0.1', port: 10 }] }),
  );
  const ownServer = new AdsServer(ownSource, { logger: silentLogger(), closeGraceMs: 200 });
  // Restarted on this port later: one the kernel does not hand out meanwhile (see freePort).
  const { port } = await ownServer.bind(`127.0.0.1:${await freePort()}`);
  let rejectPort: number | undefined;
  const client = new AdsClient({
    address: `127.0.0.1:${port}`,
    node: { id: 'weft-sidecar', cluster: 'web' },
    subscriptions: { [TypeUrl.Cluster]: '*', [TypeUrl.ClusterLoadAssignment]: ['echo-cluster'] },
    backoff: { baseMs: 20, maxMs: 100 },
    apply: ({ typeUrl, resources }) => {
      if (typeUrl !== TypeUrl.ClusterLoadAssignment) return undefined;
      const text = JSON.stringify([...resources.values()]);
      return rejectPort !== undefined && text.includes(`"port_value":${rejectPort}`)
        ? `port ${rejectPort} refused`
        : undefined;
    },
  });
  let second: AdsServer | undefined;
  try {
    const until = async (pred: () => boolean, what: string): Promise<void> => {
      const deadline = Date.now() + 3000;
      while (!pred()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const port0 = (): unknown =>
      (client.resources(TypeUrl.ClusterLoadAssignment).get('echo-cluster') as ReturnType<typeof JSON.parse>)
        ?.endpoints?.[0]?.lb_endpoints?.[0]?.endpoint?.address?.socket_address?.port_value;
    client.start();
    await until(() => port0() === 10, 'first assignment');
    assert.deepEqual([...client.resources(TypeUrl.Cluster).keys()], ['echo-cluster']);
    await until(
      () => ownServer.listProxies()[0]?.types[TypeUrl.ClusterLoadAssignment]?.pending === false,
      'ack',
    );

    rejectPort = 11;
    const nack = new Promise<{ message?: string }>((resolve) => client.once('nack', resolve));
    ownSource.set(
      TypeUrl.ClusterLoadAssignment,
      'echo-cluster',
      loadAssignment('echo-cluster', [{ host: '127.0.0.1', port: 11 }]),
    );
    assert.equal((await nack).message, 'port 11 refused');
    assert.equal(port0(), 10, 'last good set kept');
    await until(
      () =>
        ownServer.listProxies()[0]?.types[TypeUrl.ClusterLoadAssignment]?.lastNack?.message ===
        'port 11 refused',
      'server sees the NACK',
    );

    client.subscribe(TypeUrl.RouteConfiguration, ['echo-route']);
    await until(
      () => client.resources(TypeUrl.RouteConfiguration).has('echo-route'),
      'route after subscribe',
    );

    // Restart the server on the same port with newer state: the client reconnects and resyncs.
    const ackedBefore = client.version(TypeUrl.Cluster);
    const disconnected = new Promise((resolve) => client.once('disconnected', resolve));
    await ownServer.close();
    await disconnected;
    ownSource.set(
      TypeUrl.ClusterLoadAssignment,
      'echo-cluster',
      loadAssignment('echo-cluster', [{ host: '127.0.0.1', port: 12 }]),
    );
    second = new AdsServer(ownSource, { logger: silentLogger(), closeGraceMs: 200 });
    await second.bind(`127.0.0.1:${port}`);
    await until(() => port0() === 12, 'resync after reconnect');
    const status = second.listProxies()[0];
    assert.equal(status?.node.id, 'weft-sidecar');
    assert.deepEqual(status?.types[TypeUrl.RouteConfiguration]?.names, ['echo-route'], 'resubscribed');
    assert.notEqual(ackedBefore, '');
    assert.equal(client.version(TypeUrl.Cluster), String(ownSource.version));
  } finally {
    client.close();
    await ownServer.close();
    await second?.close();
  }
});
