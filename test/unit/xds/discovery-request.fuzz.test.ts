// Fuzz test of the one parser that reads bytes straight off the network: DiscoveryRequest
// decoding. Whatever a peer sends, decoding returns a request or throws an ordinary Error —
// never hangs, never crashes the process, never returns a shape the ADS server cannot use.
// The seed corpus below runs every time as a regression suite.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeDiscoveryRequest, encodeDiscoveryRequest } from '../../../src/xds/codec.js';
import { TypeUrl } from '../../../src/xds/types.js';

const valid = Buffer.from(
  encodeDiscoveryRequest({
    version_info: '7',
    node: {
      id: 'proxy-1',
      cluster: 'c',
      metadata: { fields: { NAMESPACE: { stringValue: 'default' } } },
      user_agent_name: 'fuzz',
    },
    resource_names: ['echo', 'echo:7070'],
    type_url: TypeUrl.Listener,
    response_nonce: '3',
    error_detail: { code: 3, message: 'bad' },
  }),
);

function checkShape(bytes: Uint8Array): void {
  let req;
  try {
    req = decodeDiscoveryRequest(bytes);
  } catch (e) {
    assert.ok(e instanceof Error, `threw a non-Error: ${String(e)}`);
    return;
  }
  assert.equal(typeof req.type_url, 'string');
  assert.equal(typeof req.version_info, 'string');
  assert.equal(typeof req.response_nonce, 'string');
  assert.ok(Array.isArray(req.resource_names));
  for (const n of req.resource_names) assert.equal(typeof n, 'string');
}

const SEEDS: Array<[string, Uint8Array]> = [
  ['empty', new Uint8Array()],
  ['valid', valid],
  ['truncated in the middle', valid.subarray(0, Math.floor(valid.length / 2))],
  ['one byte short', valid.subarray(0, valid.length - 1)],
  ['length prefix past the end', Uint8Array.from([0x0a, 0xff, 0x01, 0x41])],
  ['varint never ends', Uint8Array.from(new Array(16).fill(0xff))],
  ['unknown field numbers', Uint8Array.from([0xf8, 0xff, 0xff, 0xff, 0x0f, 0x01])],
  ['end-group wire type', Uint8Array.from([0x0c])],
  ['node as a string field with garbage', Uint8Array.from([0x12, 0x03, 0xff, 0xfe, 0xfd])],
  ['deeply nested struct', nestedStruct(200)],
];

/** node.metadata with `depth` nested Struct values, hand-encoded (an attacker's favourite). */
function nestedStruct(depth: number): Uint8Array {
  let value = Buffer.from([0x1a, 0x00]); // Value{string_value: ''}
  for (let i = 0; i < depth; i++) {
    const struct = Buffer.concat([
      Buffer.from([0x0a]),
      varint(value.length + 3),
      Buffer.from([0x0a, 0x01, 0x6b, 0x12]),
      varint(value.length),
      value,
    ]);
    value = Buffer.concat([Buffer.from([0x2a]), varint(struct.length), struct]); // Value{struct_value}
  }
  const node = Buffer.concat([Buffer.from([0x1a]), varint(value.length), value]); // Node.metadata? (field 3 is fine either way)
  return Buffer.concat([Buffer.from([0x12]), varint(node.length), node]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

for (const [name, bytes] of SEEDS) {
  test(`seed: ${name}`, () => checkShape(bytes));
}

test('the valid seed decodes to what was encoded', () => {
  const req = decodeDiscoveryRequest(valid);
  assert.deepEqual(req.resource_names, ['echo', 'echo:7070']);
  assert.equal(req.node?.id, 'proxy-1');
  assert.equal(req.error_detail?.message, 'bad');
});

test('fuzz: random bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => checkShape(bytes)),
    { numRuns: 3000 },
  );
});

test('fuzz: a valid request with bytes flipped, cut or spliced', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), {
        maxLength: 8,
      }),
      fc.nat({ max: valid.length }),
      (flips, cut) => {
        const b = Buffer.from(valid);
        for (const [at, v] of flips) b[at] = v;
        checkShape(b.subarray(0, cut));
        checkShape(b);
      },
    ),
    { numRuns: 3000 },
  );
});
