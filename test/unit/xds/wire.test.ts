// The sidecar's protobuf codec (src/xds/wire.ts) against protobufjs, the control plane's: every
// resource in the compiler's goldens, and random messages of the resource types, must decode to
// the same plain objects and encode to the same bytes. Also: what the encoder refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { isWeftError } from '../../../src/errors.js';
import { decodeResource as protobufjsDecode, encodeResource } from '../../../src/xds/codec.js';
import { messageType } from '../../../src/xds/protos.js';
import { TypeUrl } from '../../../src/xds/types.js';
import { decodeMessage, encodeMessage, xdsWireTypes } from '../../../src/xds/wire.js';
import { repoPath } from '../../helpers/paths.js';

const GOLDEN_DIR = repoPath('test', 'golden', 'compiler');

const types = xdsWireTypes();
const TO_OBJECT = { enums: String, longs: Number, bytes: String, json: true };
const shortName = (typeUrl: string): string => typeUrl.slice(typeUrl.lastIndexOf('/') + 1);

/** What protobufjs makes of the bytes (the reference the wire codec must equal). */
function reference(typeName: string, bytes: Uint8Array): Record<string, unknown> {
  const type = messageType(typeName);
  return type.toObject(type.decode(bytes), TO_OBJECT) as Record<string, unknown>;
}

test('every resource in the compiler goldens decodes and encodes as protobufjs does', () => {
  let checked = 0;
  for (const file of readdirSync(GOLDEN_DIR).filter((f) => f.endsWith('.golden.json'))) {
    const golden = JSON.parse(readFileSync(join(GOLDEN_DIR, file), 'utf8')) as Record<
      string,
      Record<string, object>
    >;
    for (const [typeUrl, byName] of Object.entries(golden)) {
      for (const [name, obj] of Object.entries(byName)) {
        const bytes = encodeResource(typeUrl, obj);
        const at = `${file} ${shortName(typeUrl)} ${name}`;
        assert.deepStrictEqual(
          decodeMessage(types, shortName(typeUrl), bytes),
          reference(typeUrl, bytes),
          at,
        );
        assert.deepStrictEqual(encodeMessage(types, shortName(typeUrl), obj), Buffer.from(bytes), at);
        checked++;
      }
    }
  }
  assert.ok(checked > 300, `only ${checked} golden resources`);
});

// ---------------------------------------------------------------------------------------------
// Random messages, built from protobufjs's reflection of the same types

/** Types an Any in a random message may hold (a sample of what the compiler ships in Anys). */
const ANY_TYPES = [
  'envoy.extensions.filters.http.router.v3.Router',
  'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  'google.protobuf.Struct',
];

function scalar(type: string): fc.Arbitrary<unknown> {
  switch (type) {
    case 'string':
      return fc.string({ unit: 'grapheme', maxLength: 8 });
    case 'bytes':
      return fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b).toString('base64'));
    case 'bool':
      return fc.boolean();
    case 'double':
      return fc.double();
    case 'float':
      return fc.float();
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return fc.integer();
    case 'uint32':
    case 'fixed32':
      return fc.integer({ min: 0, max: 0xffffffff });
    case 'uint64':
    case 'fixed64':
      return fc.oneof(
        fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String),
      );
    default: // int64, sint64, sfixed64
      return fc.oneof(fc.maxSafeInteger(), fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n).map(String));
  }
}

function value(field: protobuf.Field, depth: number): fc.Arbitrary<unknown> {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Enum) {
    // Mostly names, sometimes a number the enum does not define (kept as a number).
    return fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...Object.keys(rt.values)) },
      fc.integer({ min: 0, max: 999 }),
    );
  }
  if (rt instanceof protobuf.Type) return message(rt, depth + 1);
  return scalar(field.type);
}

function message(type: protobuf.Type, depth: number): fc.Arbitrary<Record<string, unknown>> {
  if (type.fullName === '.google.protobuf.Any') {
    if (depth > 3) return fc.constant({});
    return fc.constantFrom(...ANY_TYPES).chain((name) =>
      message(messageType(name), depth + 1).map((inner) => ({
        '@type': `type.googleapis.com/${name}`,
        ...inner,
      })),
    );
  }
  // Deep down only scalars, so that messages stay small and generation ends.
  const fields = type.fieldsArray.filter((f) => depth < 3 || !(f.resolvedType instanceof protobuf.Type));
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of fields) {
    if (f instanceof protobuf.MapField) {
      model[f.name] = fc.dictionary(fc.string({ maxLength: 4 }), value(f, depth), { maxKeys: 2 });
    } else if (f.repeated) model[f.name] = fc.array(value(f, depth), { maxLength: 2 });
    else model[f.name] = value(f, depth);
  }
  // Each message sets a few of its fields.
  return fc.record(model, { requiredKeys: [] }).map((o) => {
    const keys = Object.keys(o).slice(0, 6);
    return Object.fromEntries(keys.map((k) => [k, o[k]]));
  });
}

const RANDOM_TYPES = [
  TypeUrl.Listener,
  TypeUrl.Cluster,
  TypeUrl.RouteConfiguration,
  TypeUrl.ClusterLoadAssignment,
  TypeUrl.Secret,
  'type.googleapis.com/envoy.service.discovery.v3.DiscoveryRequest',
];

for (const typeUrl of RANDOM_TYPES) {
  test(`random ${shortName(typeUrl)} messages: same objects and bytes as protobufjs`, () => {
    const type = messageType(typeUrl);
    fc.assert(
      fc.property(message(type, 0), (obj) => {
        const bytes = type.encode(type.fromObject(obj)).finish();
        const decoded = decodeMessage(types, shortName(typeUrl), bytes);
        assert.deepStrictEqual(decoded, reference(typeUrl, bytes));
        // What was decoded encodes back to the same bytes, as protobufjs's own round trip does.
        const again = type.encode(type.fromObject(reference(typeUrl, bytes))).finish();
        assert.deepStrictEqual(encodeMessage(types, shortName(typeUrl), decoded), Buffer.from(again));
      }),
      { numRuns: 150 },
    );
  });
}

test('decodeResource is the wire codec: a Cluster with metadata, an Any and an unknown enum', () => {
  const cluster = {
    name: 'c',
    type: 'EDS',
    lb_policy: 'LEAST_REQUEST',
    metadata: { filter_metadata: { weft: { fields: { tls: { stringValue: 'mesh' } } } } },
    typed_extension_protocol_options: {
      x: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
    },
  };
  const bytes = encodeResource(TypeUrl.Cluster, cluster);
  assert.deepStrictEqual(protobufjsDecode(TypeUrl.Cluster, bytes), cluster);
  // lb_policy = 77 is no LbPolicy: it stays a number, as protobufjs leaves it.
  const odd = Buffer.concat([bytes, Buffer.from([6 << 3, 77])]);
  assert.equal(decodeMessage(types, shortName(TypeUrl.Cluster), odd).lb_policy, 77);
  assert.equal(reference(TypeUrl.Cluster, odd).lb_policy, 77);
});

test('the encoder refuses unknown fields, enum names and Any types, naming each path', () => {
  const bad = {
    type_url: TypeUrl.Cluster,
    respone_nonce: '1',
    node: { id: 'n', locality: { zone: 'z', planet: 'mars' } },
    error_detail: { code: 'three', details: [{ '@type': 'type.googleapis.com/no.Such' }] },
  };
  let caught: unknown;
  try {
    encodeMessage(types, 'envoy.service.discovery.v3.DiscoveryRequest', bad);
  } catch (err) {
    caught = err;
  }
  assert.ok(isWeftError(caught), String(caught));
  assert.equal(caught.code, 'WEFT_E_INTERNAL');
  const paths = caught.errors.map((d) => d.path).sort();
  assert.deepEqual(paths, [
    'error_detail.code',
    'error_detail.details[0].@type',
    'node.locality.planet',
    'respone_nonce',
  ]);
});

test('a wrong wire type, a truncated field and runaway nesting are WEFT_E_PARSE errors', () => {
  const cases: Array<[string, number[]]> = [
    ['name (string) sent as a varint', [0x08, 0x01]],
    ['length past the end', [0x0a, 0x05, 0x61]],
    ['varint that never ends', new Array(12).fill(0xff)],
  ];
  for (const [what, bytes] of cases) {
    assert.throws(
      () => decodeMessage(types, shortName(TypeUrl.Cluster), Uint8Array.from(bytes)),
      (e: unknown) => isWeftError(e) && e.code === 'WEFT_E_PARSE',
      what,
    );
  }
  // google.protobuf.Value → Struct → Value … 200 deep: refused, not a stack overflow.
  let v = Buffer.from([0x1a, 0x00]);
  for (let i = 0; i < 200; i++) {
    const field = Buffer.concat([Buffer.from([0x0a, 0x01, 0x6b, 0x12]), lengthOf(v), v]);
    const struct = Buffer.concat([Buffer.from([0x0a]), lengthOf(field), field]);
    v = Buffer.concat([Buffer.from([0x2a]), lengthOf(struct), struct]);
  }
  assert.throws(
    () => decodeMessage(types, 'google.protobuf.Value', v),
    (e: unknown) => isWeftError(e) && e.code === 'WEFT_E_PARSE' && /nested too deeply/.test(e.message),
  );
});

function lengthOf(b: Uint8Array): Buffer {
  const out: number[] = [];
  let n = b.length;
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}
