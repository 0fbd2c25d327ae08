// How far the trust bundle has reached, from the ADS server's view of each stream: a proxy has
// the bundle when its last ROOTCA response went out after the bundle changed and it ACKed that
// one; proxies that never subscribed are counted apart (they learn roots with their SVIDs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bundlePropagation } from '../../../src/control-plane/ca-api.js';
import type { ProxyStatus, TypeStatus } from '../../../src/xds/ads-server.js';
import { TypeUrl } from '../../../src/xds/types.js';
import { makeTestCa } from '../ca/ca-fixtures.js';

const ROOT = (await makeTestCa({ name: 'Propagation Root' })).certificatePem;
const SINCE = Date.parse('2026-01-01T00:00:00.000Z');

function proxy(id: string, sds?: Partial<TypeStatus>): ProxyStatus {
  const types: ProxyStatus['types'] = {
    [TypeUrl.Cluster]: { wildcard: true, names: [], ackedVersion: '3', pending: false },
  };
  if (sds)
    types[TypeUrl.Secret] = { wildcard: false, names: ['ROOTCA'], ackedVersion: '3', pending: false, ...sds };
  return {
    streamId: 1,
    node: { id, cluster: '', metadata: {}, userAgentName: 'weft', userAgentVersion: '' },
    peer: 'ipv4:127.0.0.1:1',
    identity: 'spiffe://weft.local/ns/default/sa/x',
    connectedSince: new Date(SINCE - 60_000).toISOString(),
    types,
  };
}

const sent = (ms: number, nonce = 'n1'): TypeStatus['lastSent'] => ({
  version: '3',
  nonce,
  at: new Date(ms).toISOString(),
});

test('a proxy has the bundle once it ACKed a ROOTCA sent after the change', () => {
  const r = bundlePropagation(
    [
      proxy('acked', { lastSent: sent(SINCE) }),
      proxy('no-sds'),
      proxy('in-flight', { lastSent: sent(SINCE + 5), pending: true }),
      proxy('older', { lastSent: sent(SINCE - 1) }),
      proxy('nacked', {
        lastSent: sent(SINCE + 5, 'n9'),
        lastNack: { version: '3', nonce: 'n9', message: 'no', at: new Date(SINCE + 6).toISOString() },
      }),
      proxy('nacked-before', {
        lastSent: sent(SINCE + 5, 'n9'),
        lastNack: { version: '2', nonce: 'n8', message: 'no', at: new Date(SINCE - 6).toISOString() },
      }),
      proxy('other-name', { names: ['something'], lastSent: sent(SINCE) }),
    ],
    { pem: ROOT, since: SINCE },
  );
  assert.equal(r.connected, 7);
  assert.equal(r.subscribed, 5);
  assert.equal(r.current, 2);
  assert.deepEqual(r.waiting, ['in-flight', 'older', 'nacked']);
  assert.equal(r.since, '2026-01-01T00:00:00.000Z');
  assert.equal(r.roots.length, 1);
  assert.match(r.roots[0]!, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
});

test('no bundle served yet: nobody has it; at most 20 waiting proxies are named', () => {
  const many = Array.from({ length: 25 }, (_, i) => proxy(`p${i}`, { lastSent: sent(SINCE) }));
  const r = bundlePropagation(many, undefined);
  assert.deepEqual(r.roots, []);
  assert.equal(r.since, undefined);
  assert.equal(r.current, 0);
  assert.equal(r.subscribed, 25);
  assert.equal(r.waiting.length, 20);
});
