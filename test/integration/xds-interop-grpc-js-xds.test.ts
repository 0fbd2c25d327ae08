// Interop with an xDS client Weft did not write: a proxyless grpc-js channel on xds:///echo,
// configured by @grpc/grpc-js-xds from our ADS server, calling real echo servers.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../src/log.js';
import { AdsServer, type NackEvent } from '../../src/xds/ads-server.js';
import { TypeUrl } from '../../src/xds/types.js';
import {
  MutableConfigSource,
  createXdsEchoClient,
  loadAssignment,
  proxylessResources,
  startEchoServer,
  type EchoServer,
  type XdsEchoClient,
} from '../helpers/xds-peer.js';

let echoes: EchoServer[] = [];
let source: MutableConfigSource;
let server: AdsServer;
let client: XdsEchoClient | undefined;
let xdsAddress: string;

before(async () => {
  echoes = await Promise.all(['a', 'b', 'c'].map((name) => startEchoServer({ name })));
  source = new MutableConfigSource(proxylessResources({ backends: echoes.slice(0, 2) }));
  server = new AdsServer(source, { logger: silentLogger(), closeGraceMs: 500 });
  const { port } = await server.bind('127.0.0.1:0');
  xdsAddress = `127.0.0.1:${port}`;
});

after(async () => {
  client?.close();
  await server.close();
  await Promise.all(echoes.map((e) => e.close()));
});

/** Calls until `done` says the answers so far are enough, or fails at the deadline. */
async function callUntil(
  done: (servers: string[]) => boolean,
  deadlineMs: number,
  what: string,
): Promise<string[]> {
  const seen: string[] = [];
  const deadline = Date.now() + deadlineMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const res = await client!.call('hi', { timeoutMs: Math.max(100, deadline - Date.now()) });
      seen.push(res.server);
      if (done(seen)) return seen;
    } catch (err) {
      lastError = err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  throw new Error(
    `${what}: not reached in ${deadlineMs} ms; answers ${seen.join(',')}; last error ${String(lastError)}`,
  );
}

test('grpc-js-xds follows Listener → RouteConfiguration → Cluster → ClusterLoadAssignment to both backends', async () => {
  client = createXdsEchoClient({ xdsAddress, node: { id: 'test-client', cluster: 'interop' } });
  const res = await client.call('hello', { metadata: { 'x-weft-test': 'yes' }, timeoutMs: 10_000 });
  assert.equal(res.message, 'hello');
  assert.equal(res.metadata['x-weft-test'], 'yes');
  await callUntil((s) => s.includes('a') && s.includes('b'), 5000, 'round robin over a and b');

  const status = server.listProxies().find((p) => p.node.id === 'test-client');
  assert.ok(status, 'the grpc-js-xds client is listed');
  assert.equal(status.node.cluster, 'interop');
  assert.match(status.node.userAgentName, /grpc/i);
  for (const t of [
    TypeUrl.Listener,
    TypeUrl.RouteConfiguration,
    TypeUrl.Cluster,
    TypeUrl.ClusterLoadAssignment,
  ]) {
    assert.equal(status.types[t]?.ackedVersion, String(source.version), `${t} acked`);
    assert.equal(status.types[t]?.lastNack, undefined);
  }
  // grpc-js-xds subscribes to LDS and CDS by name, never by wildcard.
  assert.deepEqual(status.types[TypeUrl.Listener]?.names, ['echo']);
  assert.equal(status.types[TypeUrl.Cluster]?.wildcard, false);
  assert.deepEqual(status.types[TypeUrl.Cluster]?.names, ['echo-cluster']);
});

test('an endpoint change moves calls within 2 s', async () => {
  source.set(TypeUrl.ClusterLoadAssignment, 'echo-cluster', loadAssignment('echo-cluster', [echoes[2]!]));
  // Five answers in a row from c: the old endpoints are gone, not just one more in rotation.
  await callUntil((s) => s.length >= 5 && s.slice(-5).every((n) => n === 'c'), 2000, 'move to c');
});

test('a resource grpc-js-xds rejects is NACKed with its message, and the last good config keeps serving', async () => {
  const nacked = new Promise<NackEvent>((resolve) => {
    const onNack = (e: NackEvent): void => {
      if (e.nodeId === 'test-client' && e.typeUrl === TypeUrl.ClusterLoadAssignment) {
        server.off('nack', onNack);
        resolve(e);
      }
    };
    server.on('nack', onNack);
  });
  // Valid protobuf, invalid for gRPC: every locality_lb_endpoints must carry a locality.
  const invalid = loadAssignment('echo-cluster', [echoes[0]!]) as { endpoints: Record<string, unknown>[] };
  delete invalid.endpoints[0]!.locality;
  source.set(TypeUrl.ClusterLoadAssignment, 'echo-cluster', invalid);
  const nack = await nacked;
  assert.match(nack.message, /ClusterLoadAssignment message validation failed.*locality unset/);
  const eds = server.listProxies().find((p) => p.node.id === 'test-client')?.types[
    TypeUrl.ClusterLoadAssignment
  ];
  assert.ok(eds?.lastNack);
  assert.equal(eds.lastNack.version, String(source.version));
  assert.match(eds.lastNack.message, /locality unset/);
  assert.notEqual(eds.ackedVersion, String(source.version));
  await callUntil((s) => s.length >= 3 && s.every((n) => n === 'c'), 2000, 'still on c');
});
