// The build-time descriptor (dist/src/xds/envoy-protos.json) against the .proto files it is made
// from: every type a message can carry, Any-only ones included, is there; only the machinery of
// annotations (validation rules, descriptor.proto) is left out.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import protobuf from 'protobufjs';
import { parseXdsProtos, xdsRoot } from '../../../src/xds/protos.js';

function typeNames(root: protobuf.NamespaceBase): Set<string> {
  const out = new Set<string>();
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const o of ns.nestedArray) {
      if (o instanceof protobuf.Type || o instanceof protobuf.Enum) out.add(o.fullName);
      if (o instanceof protobuf.Namespace || o instanceof protobuf.Type) walk(o);
    }
  };
  walk(root);
  return out;
}

test('the descriptor holds every parsed type but the annotations machinery', () => {
  // Compiled next to src/xds/protos.js by `npm run build`; without it xdsRoot() would parse.
  assert.ok(
    existsSync(new URL('../../../src/xds/envoy-protos.json', import.meta.url)),
    'npm run build writes it',
  );
  const parsed = typeNames(parseXdsProtos());
  const loaded = typeNames(xdsRoot());
  const missing = [...parsed].filter((n) => !loaded.has(n));
  const unexpected = missing.filter(
    (n) => !/^\.(validate|udpa\.annotations|xds\.annotations|envoy\.annotations|google\.protobuf)\./.test(n),
  );
  assert.deepEqual(unexpected, []);
  for (const n of [
    '.google.protobuf.StringValue',
    '.google.protobuf.Struct',
    '.envoy.config.route.v3.FilterConfig',
    '.envoy.config.core.v3.TcpProtocolOptions',
  ]) {
    assert.ok(loaded.has(n), `${n} is kept`);
  }
  assert.ok(!loaded.has('.google.protobuf.FileDescriptorProto'), 'descriptor.proto is left out');
});
