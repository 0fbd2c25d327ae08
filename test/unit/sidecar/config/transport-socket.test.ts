// Translator: the mTLS subset (DownstreamTlsContext on inbound chains, PERMISSIVE's tls and
// raw_buffer chains, UpstreamTlsContext per endpoint by transport_socket_matches). Anything
// outside it is refused by field path, and the last good config keeps serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inboundTls, tlsEndpointMetadata, upstreamTls } from '../../../../src/compiler/mtls.js';
import { basicSet, edsCluster, hcm, listener, ok, problems, run, type RawSet } from './fixtures.js';

type Obj = Record<string, unknown>;
const ID = 'spiffe://weft.local/ns/default/sa/echo';

function filter(): Obj {
  return { name: 'f', typed_config: hcm() };
}

function mtlsSet(mode: 'STRICT' | 'PERMISSIVE', edit: (l: Obj, c: Obj) => void = () => {}): RawSet {
  const set = basicSet();
  const l = { ...listener('inbound|15006', 15006, hcm()), ...inboundTls(mode, [filter()]) } as Obj;
  const c = edsCluster('c', upstreamTls('outbound_.80_._.c.default.svc.cluster.local', [ID])) as Obj;
  edit(l, c);
  set.listeners = [...(set.listeners ?? []), l];
  set.clusters = [c];
  const endpoints = set.endpoints![0] as { endpoints: Array<{ lb_endpoints: Obj[] }> };
  endpoints.endpoints[0]!.lb_endpoints[0]!.metadata = tlsEndpointMetadata();
  return set;
}

/** The path inside an object, for edits: `a.b[0].c`. */
function at(o: Obj, path: string): Obj {
  let cur: unknown = o;
  for (const part of path.split(/\.|\[|\]/).filter((p) => p !== '')) cur = (cur as Obj)[part];
  return cur as Obj;
}

const DOWNSTREAM = 'filter_chains[0].transport_socket.typed_config';
const UPSTREAM = 'transport_socket_matches[0].transport_socket.typed_config';

test('STRICT and PERMISSIVE listeners and a cluster with sidecar and plaintext endpoints', () => {
  const strict = ok(mtlsSet('STRICT')).config;
  assert.deepEqual(strict.listeners.find((l) => l.name === 'inbound|15006')?.tls, { mode: 'STRICT' });
  const c = strict.clusters.get('c');
  assert.deepEqual(c?.tls, { sni: 'outbound_.80_._.c.default.svc.cluster.local', expectedSpiffeIds: [ID] });
  assert.deepEqual(
    c?.endpoints.map((e) => e.tls ?? false),
    [true, false],
  );
  const permissive = ok(mtlsSet('PERMISSIVE')).config;
  assert.deepEqual(permissive.listeners.find((l) => l.name === 'inbound|15006')?.tls, { mode: 'PERMISSIVE' });
});

test('unsupported TLS fields and values are refused with their field paths', () => {
  const got = problems(
    mtlsSet('STRICT', (l, c) => {
      const down = at(l, DOWNSTREAM);
      down.require_client_certificate = { value: false };
      const common = down.common_tls_context as Obj;
      common.tls_params = { tls_minimum_protocol_version: 'TLSv1_2' };
      common.tls_certificates = [{ certificate_chain: { inline_string: 'PEM' } }];
      (common.validation_context_sds_secret_config as Obj).name = 'other';
      const up = at(c, UPSTREAM);
      up.allow_renegotiation = true;
      const upCommon = up.common_tls_context as Obj;
      upCommon.alpn_protocols = ['h3'];
      (upCommon.tls_certificate_sds_secret_configs as Obj[])[0]!.name = 'key';
    }),
  );
  assert.deepEqual(got.sort(), [
    'Cluster "c": transport_socket_matches[0].transport_socket.typed_config.allow_renegotiation is not supported by the Weft sidecar',
    'Listener "inbound|15006": filter_chains[0].transport_socket.typed_config.common_tls_context.tls_certificates is not supported by the Weft sidecar',
    'Listener "inbound|15006": filter_chains[0].transport_socket.typed_config.common_tls_context.tls_params.tls_minimum_protocol_version is TLSv1_2, which is not supported by the Weft sidecar (supported: TLSv1_3)',
  ]);
  // Values the walker accepts but the sidecar cannot honour, once the shape is right.
  const semantic = problems(
    mtlsSet('STRICT', (l, c) => {
      const down = at(l, DOWNSTREAM);
      down.require_client_certificate = { value: false };
      (at(down, 'common_tls_context.validation_context_sds_secret_config') as Obj).name = 'other';
      const upCommon = at(c, `${UPSTREAM}.common_tls_context`);
      upCommon.alpn_protocols = ['h3'];
      (upCommon.tls_certificate_sds_secret_configs as Obj[])[0]!.name = 'key';
    }),
  );
  assert.deepEqual(semantic.sort(), [
    'Cluster "c": transport_socket_matches[0].transport_socket.typed_config.common_tls_context.alpn_protocols[0]: "h3" is not h2 or http/1.1',
    'Cluster "c": transport_socket_matches[0].transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs: must name exactly the SDS secret "default" (the workload\'s own SVID)',
    'Listener "inbound|15006": filter_chains[0].transport_socket.typed_config.common_tls_context.validation_context_sds_secret_config.name: must be "ROOTCA" (the mesh trust bundle)',
    'Listener "inbound|15006": filter_chains[0].transport_socket.typed_config.require_client_certificate: must be true (mutual TLS)',
  ]);
});

test('PERMISSIVE needs tls_inspector and the tls/raw_buffer pair with equal filters', () => {
  const got = problems(
    mtlsSet('PERMISSIVE', (l) => {
      delete l.listener_filters;
      const chains = l.filter_chains as Obj[];
      chains[1]!.filters = [{ name: 'g', typed_config: hcm({ stat_prefix: 'other' }) }];
    }),
  );
  assert.deepEqual(got.sort(), [
    'Listener "inbound|15006": filter_chains[1].filters: must equal the other chain\'s filters',
    'Listener "inbound|15006": listener_filters: must hold envoy.filters.listener.tls_inspector to choose between the chains',
  ]);
  const wrongMatch = problems(
    mtlsSet('PERMISSIVE', (l) => {
      ((l.filter_chains as Obj[])[1]!.filter_chain_match as Obj).transport_protocol = 'tls';
    }),
  );
  assert.deepEqual(wrongMatch, [
    'Listener "inbound|15006": filter_chains: two chains must match transport_protocol "tls" and "raw_buffer"',
  ]);
});

test('transport_socket_matches: only tlsMode weft with TLS and an empty match with raw_buffer', () => {
  const got = problems(
    mtlsSet('STRICT', (_l, c) => {
      const matches = c.transport_socket_matches as Obj[];
      matches[0]!.match = { fields: { tlsMode: { stringValue: 'istio' } } };
      matches[1]!.transport_socket = matches[0]!.transport_socket;
    }),
  );
  assert.deepEqual(got.sort(), [
    'Cluster "c": transport_socket_matches[0].match.fields.tlsMode: only "weft" is supported',
    'Cluster "c": transport_socket_matches[1].transport_socket: the catch-all match (empty) must use raw_buffer',
  ]);
});

test('a refused mTLS update keeps the last good config', () => {
  const good = ok(mtlsSet('STRICT')).config;
  const bad = run(
    mtlsSet('STRICT', (l) => {
      at(l, DOWNSTREAM).require_client_certificate = { value: false };
    }),
    good,
  );
  assert.equal(bad.ok, false);
  assert.deepEqual(good.listeners.find((l) => l.name === 'inbound|15006')?.tls, { mode: 'STRICT' });
});
