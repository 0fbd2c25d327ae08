// The strict xDS codec: round trips of the resources the compiler emits, field paths on
// unknown fields and wrong shapes, Any recursion, and wire-compatible response building.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isWeftError } from '../../../src/errors.js';
import {
  buildDiscoveryResponse,
  checkShape,
  controlPlaneField,
  decodeDiscoveryResponse,
  decodeResource,
  encodeForResponse,
  encodeResource,
  structFromJson,
  structToJson,
} from '../../../src/xds/codec.js';
import { messageType } from '../../../src/xds/protos.js';
import { TypeUrl } from '../../../src/xds/types.js';
import { apiListener, edsCluster, loadAssignment, routeToCluster } from '../../helpers/xds-peer.js';

const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

function roundTrip(typeUrl: TypeUrl, obj: object): void {
  assert.deepEqual(decodeResource(typeUrl, encodeResource(typeUrl, obj)), obj);
}

test('representative resources round-trip unchanged', () => {
  roundTrip(TypeUrl.Listener, apiListener('echo', 'echo-route'));
  roundTrip(TypeUrl.RouteConfiguration, routeToCluster('echo-route', 'echo-cluster'));
  roundTrip(TypeUrl.Cluster, {
    ...edsCluster('c'),
    metadata: { filter_metadata: { weft: structFromJson({ tls: 'mesh', weight: 3, tags: ['a', true] }) } },
  });
  roundTrip(TypeUrl.ClusterLoadAssignment, loadAssignment('c', [{ host: '10.0.0.1', port: 8080 }]));
  roundTrip(TypeUrl.Secret, {
    name: 'default',
    tls_certificate: {
      certificate_chain: { inline_string: '-----BEGIN CERTIFICATE-----' },
      private_key: { inline_bytes: Buffer.from('key').toString('base64') },
    },
  });
  // A sidecar inbound listener: network RBAC then HCM with HTTP RBAC, and downstream TLS.
  roundTrip(TypeUrl.Listener, {
    name: 'inbound',
    address: { socket_address: { address: '0.0.0.0', port_value: 15006 } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.rbac',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC',
              stat_prefix: 'in',
              rules: {
                action: 'ALLOW',
                policies: { all: { permissions: [{ any: true }], principals: [{ any: true }] } },
              },
            },
          },
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM,
              stat_prefix: 'in',
              route_config: routeToCluster('local', 'local-app'),
              http_filters: [
                {
                  name: 'envoy.filters.http.rbac',
                  typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC' },
                },
                {
                  name: 'router',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
                  },
                },
              ],
            },
          },
        ],
        transport_socket: {
          name: 'envoy.transport_sockets.tls',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
            require_client_certificate: { value: true },
            common_tls_context: {
              tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {} } }],
            },
          },
        },
      },
    ],
  });
});

test('an unknown field is an error naming its path, inside Any too', () => {
  const listener = apiListener('echo', 'r') as { api_listener: { api_listener: Record<string, unknown> } };
  listener.api_listener.api_listener.stat_prefixx = 'typo';
  assert.throws(
    () => encodeResource(TypeUrl.Listener, { ...listener, lb_polcy: 'x' }),
    (err: unknown) => {
      assert.ok(isWeftError(err, 'WEFT_E_INTERNAL'));
      assert.deepEqual(
        err.errors.map((e) => e.path),
        ['api_listener.api_listener.stat_prefixx', 'lb_polcy'],
      );
      assert.match(
        err.message,
        /api_listener\.api_listener\.stat_prefixx: unknown field of .*HttpConnectionManager/,
      );
      return true;
    },
  );
});

test('wrong shapes are reported with paths: scalars, enums, arrays, oneofs, maps, Any types', () => {
  const errors = checkShape(TypeUrl.Cluster, {
    name: 7,
    type: 'EDSS',
    lb_policy: 3000,
    connect_timeout: { seconds: 'x' },
    per_connection_buffer_limit_bytes: { value: -1 },
    transport_socket_matches: {},
    load_assignment: {
      cluster_name: 'c',
      endpoints: [{ lb_endpoints: [{ endpoint: { address: 'nope' } }] }],
    },
    cluster_type: { name: 'x', typed_config: { '@type': 'type.googleapis.com/no.such.Type' } },
    metadata: { filter_metadata: { a: 'not a struct' } },
  });
  const byPath = new Map(errors.map((e) => [e.path, e.message]));
  assert.match(byPath.get('name') ?? '', /expected a string/);
  assert.match(byPath.get('type') ?? '', /expected one of STATIC, .*EDS/);
  assert.match(byPath.get('lb_policy') ?? '', /expected one of/);
  assert.match(byPath.get('connect_timeout.seconds') ?? '', /decimal integer string/);
  assert.match(byPath.get('per_connection_buffer_limit_bytes.value') ?? '', /out of range/);
  assert.match(byPath.get('transport_socket_matches') ?? '', /expected an array/);
  assert.match(
    byPath.get('load_assignment.endpoints[0].lb_endpoints[0].endpoint.address') ?? '',
    /Address object/,
  );
  assert.match(byPath.get('cluster_type.typed_config.@type') ?? '', /unknown message type/);
  assert.match(byPath.get('metadata.filter_metadata["a"]') ?? '', /Struct object/);
  // type (a field) and cluster_type are both members of cluster_discovery_type.
  assert.match(byPath.get('cluster_type') ?? '', /oneof cluster_discovery_type already set by type/);
});

test('null and undefined mean unset, as protobufjs reads them', () => {
  assert.deepEqual(
    checkShape(TypeUrl.Cluster, { name: 'c', eds_cluster_config: null, lb_policy: undefined }),
    [],
  );
});

test('Any recursion: nested typed_config is checked and expanded by its @type', () => {
  const listener = apiListener('echo', 'r');
  const bytes = encodeResource(TypeUrl.Listener, listener);
  const raw = messageType(TypeUrl.Listener).decode(bytes) as unknown as {
    api_listener: { api_listener: { type_url: string; value: Uint8Array } };
  };
  assert.equal(raw.api_listener.api_listener.type_url, HCM);
  const hcm = decodeResource(HCM, raw.api_listener.api_listener.value);
  assert.equal((hcm.http_filters as { name: string }[])[0]?.name, 'router');
});

test('struct helpers convert plain JSON both ways', () => {
  const json = { a: 'x', n: 1.5, b: false, nil: null, list: [1, 'two'], nested: { k: 'v' } };
  assert.deepEqual(structToJson(structFromJson(json)), json);
});

test('buildDiscoveryResponse is what protobufjs decodes as a DiscoveryResponse', () => {
  const cla = loadAssignment('c', [{ host: '127.0.0.1', port: 1 }]);
  const enc = encodeForResponse(TypeUrl.ClusterLoadAssignment, 'c', cla);
  assert.equal(encodeForResponse(TypeUrl.ClusterLoadAssignment, 'c', cla), enc, 'cached by object identity');
  const bytes = buildDiscoveryResponse(
    'v7',
    [enc, enc],
    TypeUrl.ClusterLoadAssignment,
    'n1',
    controlPlaneField('weft'),
  );
  const res = decodeDiscoveryResponse(bytes);
  assert.equal(res.version_info, 'v7');
  assert.equal(res.type_url, TypeUrl.ClusterLoadAssignment);
  assert.equal(res.nonce, 'n1');
  assert.equal(res.resources.length, 2);
  assert.deepEqual(decodeResource(TypeUrl.ClusterLoadAssignment, res.resources[0]!.value), cla);
  const full = messageType('envoy.service.discovery.v3.DiscoveryResponse').decode(bytes) as unknown as {
    control_plane: { identifier: string };
  };
  assert.equal(full.control_plane.identifier, 'weft');
  // Empty version and nonce are omitted like protobuf does, and large payloads use long varints.
  const big = { ...cla, cluster_name: 'x'.repeat(300) };
  const empty = buildDiscoveryResponse(
    '',
    [encodeForResponse(TypeUrl.ClusterLoadAssignment, 'big', big)],
    '',
    '',
    Buffer.alloc(0),
  );
  const back = decodeDiscoveryResponse(empty);
  assert.equal(back.version_info, '');
  assert.equal(
    decodeResource(TypeUrl.ClusterLoadAssignment, back.resources[0]!.value).cluster_name,
    big.cluster_name,
  );
});
