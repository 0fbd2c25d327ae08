// The ADS server's push pass under load: it runs in slices (yielding every few hundred sends),
// skips streams whose subscriptions a change does not touch, and reruns when a change lands
// mid-pass. Whatever the interleaving, every stream must end on the latest state, and no
// stream may be sent a resource it does not subscribe to or one that did not change.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { silentLogger } from '../../src/log.js';
import {
  decodeDiscoveryResponse,
  decodeResource,
  encodeDiscoveryRequest,
  type DiscoveryResponseMessage,
} from '../../src/xds/codec.js';
import { AdsServer } from '../../src/xds/ads-server.js';
import { AdsClient, type ResponseEvent } from '../../src/xds/ads-client.js';
import { TypeUrl } from '../../src/xds/types.js';
import { MutableConfigSource, loadAssignment } from '../helpers/xds-peer.js';
import { eventually } from '../helpers/weft-process.js';

const CLA = TypeUrl.ClusterLoadAssignment;
let source: MutableConfigSource;
let server: AdsServer;
let address: string;
const clients: AdsClient[] = [];

function ports(cla: Record<string, unknown> | undefined): number[] {
  const eps =
    (
      cla as {
        endpoints?: Array<{
          lb_endpoints?: Array<{ endpoint: { address: { socket_address: { port_value: number } } } }>;
        }>;
      }
    )?.endpoints?.[0]?.lb_endpoints ?? [];
  return eps.map((e) => e.endpoint.address.socket_address.port_value);
}

before(async () => {
  source = new MutableConfigSource(
    new Map([
      [
        CLA,
        new Map([
          ['a', loadAssignment('a', [{ host: '127.0.0.1', port: 1000 }])],
          ['b', loadAssignment('b', [{ host: '127.0.0.1', port: 2000 }])],
        ]),
      ],
    ]),
  );
  server = new AdsServer(source, { logger: silentLogger(), closeGraceMs: 500 });
  const { port } = await server.bind('127.0.0.1:0');
  address = `127.0.0.1:${port}`;
});

after(async () => {
  for (const c of clients) c.close();
  await server.close();
});

function client(id: string, names: string[]): AdsClient {
  // A channel of its own: one connection per client, as real proxies have.
  const c = new AdsClient({ address, node: { id }, subscriptions: { [CLA]: names } });
  clients.push(c);
  c.start();
  return c;
}

test('600 streams and back-to-back changes, one landing mid-pass: every stream ends on the last', async () => {
  const many = Array.from({ length: 600 }, (_, i) => client(`many-${i}`, ['a']));
  await eventually(
    'all 600 streams have the initial state',
    async () => many.every((c) => ports(c.resources(CLA).get('a'))[0] === 1000),
    15000,
  );
  const responses = new Map<AdsClient, number>();
  for (const c of many) c.on('response', () => responses.set(c, (responses.get(c) ?? 0) + 1));

  // The first change starts a pass of three or more slices (256 sends each); the second lands
  // while it runs, after the first sends went out; the third right behind it.
  source.set(CLA, 'a', loadAssignment('a', [{ host: '127.0.0.1', port: 1001 }]));
  await new Promise<void>((resolve) => server.once('send', () => resolve()));
  source.set(CLA, 'a', loadAssignment('a', [{ host: '127.0.0.1', port: 1002 }]));
  source.set(CLA, 'a', loadAssignment('a', [{ host: '127.0.0.1', port: 1003 }]));

  await eventually(
    'every stream on the last state',
    async () => many.every((c) => ports(c.resources(CLA).get('a'))[0] === 1003),
    15000,
  );
  for (const c of many) {
    const n = responses.get(c) ?? 0;
    assert.ok(n >= 1 && n <= 3, `a stream got ${n} responses for 3 changes`);
  }
});

test('a change to a resource a stream does not subscribe to sends it nothing, before and after it subscribes more', async () => {
  const onlyA = client('only-a', ['a']);
  await eventually('initial a', async () => ports(onlyA.resources(CLA).get('a'))[0] !== undefined);
  const seen: ResponseEvent[] = [];
  onlyA.on('response', (r) => seen.push(r));

  source.set(CLA, 'b', loadAssignment('b', [{ host: '127.0.0.1', port: 2001 }]));
  // A probe that subscribes to b after the change proves the pass has run past only-a: the
  // server visits streams in the order they opened, and only-a opened first.
  const probe = client('probe-b', ['b']);
  await eventually('probe sees b', async () => ports(probe.resources(CLA).get('b'))[0] === 2001);
  source.set(CLA, 'b', loadAssignment('b', [{ host: '127.0.0.1', port: 2002 }]));
  await eventually(
    'probe sees the second change',
    async () => ports(probe.resources(CLA).get('b'))[0] === 2002,
  );
  assert.equal(seen.length, 0, `only-a was sent ${JSON.stringify(seen)}`);

  // Now it subscribes to b as well: b comes at once; then a change to a reaches it, one to b too.
  onlyA.subscribe(CLA, ['a', 'b']);
  await eventually('b after subscribing', async () => ports(onlyA.resources(CLA).get('b'))[0] === 2002);
  source.set(CLA, 'a', loadAssignment('a', [{ host: '127.0.0.1', port: 1100 }]));
  await eventually('a changed', async () => ports(onlyA.resources(CLA).get('a'))[0] === 1100);
  source.set(CLA, 'b', loadAssignment('b', [{ host: '127.0.0.1', port: 2100 }]));
  await eventually('b changed', async () => ports(onlyA.resources(CLA).get('b'))[0] === 2100);
});

test('a proxy that stops reading is not sent every change: it gets the latest state when it reads again', async () => {
  const METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
  const big = (port: number): object =>
    loadAssignment(
      'big',
      Array.from({ length: 400 }, (_, i) => ({ host: `10.${Math.floor(i / 250)}.${i % 250}.1`, port })),
    );
  source.set(CLA, 'big', big(1));
  const raw = new grpc.Client(address, grpc.credentials.createInsecure());
  const call = raw.makeBidiStreamRequest(
    METHOD,
    (r: object) => Buffer.from(encodeDiscoveryRequest(r)),
    decodeDiscoveryResponse,
  );
  call.on('error', () => {});
  try {
    const received: DiscoveryResponseMessage[] = [];
    call.on('data', (r: DiscoveryResponseMessage) => received.push(r));
    call.write({ node: { id: 'slow-reader' }, type_url: CLA, resource_names: ['big'] });
    await eventually('first response', async () => received.length === 1);
    call.pause();

    let sends = 0;
    const onSend = (e: { nodeId: string }): void => void (e.nodeId === 'slow-reader' && sends++);
    server.on('send', onSend);
    for (let i = 2; i <= 300; i++) {
      source.set(CLA, 'big', big(i));
      await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 200));
    server.off('send', onSend);
    // ~25 KB each: the HTTP/2 window and gRPC's buffer hold only a few; the rest are skipped.
    assert.ok(sends < 100, `the server queued ${sends} responses for a proxy that is not reading`);

    call.resume();
    const last = (): number => {
      const r = received[received.length - 1]!;
      return ports(decodeResource(CLA, r.resources[0]!.value))[0]!;
    };
    await eventually('the latest state after reading again', async () => last() === 300, 5000);
    assert.ok(received.length < 100, `received ${received.length} responses`);
  } finally {
    call.cancel();
    raw.close();
  }
});
