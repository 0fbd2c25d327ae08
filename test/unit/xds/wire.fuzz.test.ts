// Fuzz test of the sidecar's resource decoder (src/xds/wire.ts): the bytes come from the control
// plane over the network, so whatever arrives, decoding returns a plain object or throws a
// WEFT_E_PARSE WeftError (the sidecar NACKs it) — never another exception, a hang or a stack
// overflow. The seed corpus below runs every time as a regression suite.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isWeftError } from '../../../src/errors.js';
import { encodeResource, structFromJson } from '../../../src/xds/codec.js';
import { TypeUrl } from '../../../src/xds/types.js';
import { decodeMessage, xdsWireTypes } from '../../../src/xds/wire.js';
import { apiListener, edsCluster } from '../../helpers/xds-peer.js';

const types = xdsWireTypes();
const CLUSTER = 'envoy.config.cluster.v3.Cluster';
const LISTENER = 'envoy.config.listener.v3.Listener';

function decodesOrRefuses(typeName: string, bytes: Uint8Array): void {
  try {
    const out = decodeMessage(types, typeName, bytes);
    assert.equal(typeof out, 'object');
  } catch (e) {
    assert.ok(isWeftError(e) && e.code === 'WEFT_E_PARSE', `threw ${String(e)}`);
  }
}

const cluster = Buffer.from(
  encodeResource(TypeUrl.Cluster, {
    ...edsCluster('c'),
    metadata: { filter_metadata: { weft: structFromJson({ tls: 'mesh', weight: 3, tags: ['a', true] }) } },
  }),
);
const listener = Buffer.from(encodeResource(TypeUrl.Listener, apiListener('echo', 'echo-route')));

const SEEDS: Array<[string, string, Uint8Array]> = [
  ['empty', CLUSTER, new Uint8Array()],
  ['a Cluster', CLUSTER, cluster],
  ['a Listener with Anys', LISTENER, listener],
  ['truncated in the middle', LISTENER, listener.subarray(0, Math.floor(listener.length / 2))],
  ['one byte short', CLUSTER, cluster.subarray(0, cluster.length - 1)],
  ['length prefix past the end', CLUSTER, Uint8Array.from([0x0a, 0xff, 0x01, 0x41])],
  ['varint never ends', CLUSTER, Uint8Array.from(new Array(16).fill(0xff))],
  ['unknown field numbers', CLUSTER, Uint8Array.from([0xf8, 0xff, 0xff, 0xff, 0x0f, 0x01])],
  ['an unknown group, nested', CLUSTER, Uint8Array.from([0xfb, 0x0f, 0xfb, 0x0f, 0xfc, 0x0f, 0xfc, 0x0f])],
  ['a group that never ends', CLUSTER, Uint8Array.from([0xfb, 0x0f, 0x08, 0x01])],
  ['a lone end-group', CLUSTER, Uint8Array.from([0x0c])],
  ['wire type 7', CLUSTER, Uint8Array.from([0x0f])],
  [
    'a packed run overrunning its length',
    'envoy.config.listener.v3.FilterChainMatch',
    Uint8Array.from([0x3a, 0x01, 0x80]),
  ],
  ['an Any of a known type with garbage inside', LISTENER, anyWithGarbage()],
];

/** Listener.listener_filters[0].typed_config: an Any naming a real type whose bytes are junk. */
function anyWithGarbage(): Uint8Array {
  const url = Buffer.from('type.googleapis.com/envoy.config.cluster.v3.Cluster');
  const any = Buffer.concat([
    Buffer.from([0x0a, url.length]),
    url,
    Buffer.from([0x12, 0x03, 0x0a, 0x09, 0x41]),
  ]);
  const filter = Buffer.concat([Buffer.from([0x0a, 0x01, 0x66, 0x1a, any.length]), any]);
  return Buffer.concat([Buffer.from([0x4a, filter.length]), filter]);
}

for (const [name, typeName, bytes] of SEEDS) {
  test(`seed: ${name}`, () => decodesOrRefuses(typeName, bytes));
}

test('random bytes are decoded or refused with WEFT_E_PARSE', () => {
  fc.assert(
    fc.property(fc.constantFrom(CLUSTER, LISTENER), fc.uint8Array({ maxLength: 200 }), decodesOrRefuses),
    { numRuns: 2000 },
  );
});

test('valid resources with bytes flipped, cut or spliced are decoded or refused', () => {
  const mutate = fc.record({
    base: fc.constantFrom<[string, Buffer]>([CLUSTER, cluster], [LISTENER, listener]),
    at: fc.nat(),
    cut: fc.nat(),
    insert: fc.uint8Array({ maxLength: 6 }),
  });
  fc.assert(
    fc.property(mutate, ({ base: [typeName, bytes], at, cut, insert }) => {
      const i = at % bytes.length;
      const mutated = Buffer.concat([bytes.subarray(0, i), insert, bytes.subarray(i + (cut % 4))]);
      decodesOrRefuses(typeName, mutated);
    }),
    { numRuns: 2000 },
  );
});
