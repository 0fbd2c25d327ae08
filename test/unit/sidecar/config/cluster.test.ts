// Translator: Clusters and ClusterLoadAssignments, how they join, and their refusals; and that
// problems from every resource type are reported together.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADS,
  assignment,
  basicSet,
  edsCluster,
  httpListener,
  ok,
  problems,
  routeConfig,
  tcpListener,
} from './fixtures.js';

const H2 = {
  typed_extension_protocol_options: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      explicit_http_config: { http2_protocol_options: {} },
    },
  },
};

test('an EDS cluster gets its endpoints from the assignment named by service_name', () => {
  const set = basicSet();
  set.clusters = [edsCluster('c', { eds_cluster_config: { eds_config: ADS, service_name: 'svc-c' } })];
  set.endpoints = [
    {
      cluster_name: 'svc-c',
      endpoints: [
        {
          locality: { region: 'r', zone: 'z', sub_zone: 's' },
          load_balancing_weight: { value: 3 },
          lb_endpoints: [
            {
              endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 80 } } },
              health_status: 'HEALTHY',
              load_balancing_weight: { value: 5 },
            },
            { endpoint: { address: { socket_address: { address: '10.0.0.2', port_value: 80 } } } },
            {
              endpoint: { address: { socket_address: { address: '10.0.0.3', port_value: 80 } } },
              health_status: 'UNHEALTHY',
            },
            {
              endpoint: { address: { socket_address: { address: '10.0.0.4', port_value: 80 } } },
              health_status: 'DRAINING',
            },
            {
              endpoint: { address: { socket_address: { address: '::1', port_value: 81 } } },
              health_status: 'DEGRADED',
            },
          ],
        },
        {
          priority: 0,
          lb_endpoints: [
            { endpoint: { address: { socket_address: { address: '10.0.1.1', port_value: 80 } } } },
          ],
        },
      ],
    },
  ];
  const { config, pending } = ok(set);
  assert.deepEqual(config.clusters.get('c'), {
    name: 'c',
    lbPolicy: 'ROUND_ROBIN',
    connectTimeoutMs: 1000,
    protocol: 'http1',
    endpoints: [
      { host: '10.0.0.1', port: 80, weight: 5, healthy: true },
      { host: '10.0.0.2', port: 80, weight: 1, healthy: true },
      { host: '10.0.0.3', port: 80, weight: 1, healthy: false },
      { host: '10.0.0.4', port: 80, weight: 1, healthy: false },
      { host: '::1', port: 81, weight: 1, healthy: false },
      { host: '10.0.1.1', port: 80, weight: 1, healthy: true },
    ],
  });
  assert.deepEqual(pending.endpoints, []);
});

test('cluster options: HTTP/2, explicit HTTP/1.1, LEAST_REQUEST, Envoy defaults (STATIC, 5 s connect)', () => {
  const h1 = {
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http_protocol_options: {} },
      },
    },
  };
  const { config } = ok({
    clusters: [
      edsCluster('h2', { ...H2, lb_policy: 'LEAST_REQUEST' }),
      edsCluster('h1', h1),
      { name: 'static', load_assignment: assignment('static', [{ host: '127.0.0.1', port: 8080 }]) },
    ],
    endpoints: [assignment('h2', []), assignment('h1', [])],
  });
  assert.equal(config.clusters.get('h2')?.protocol, 'http2');
  assert.equal(config.clusters.get('h2')?.lbPolicy, 'LEAST_REQUEST');
  assert.equal(config.clusters.get('h1')?.protocol, 'http1');
  assert.deepEqual(config.clusters.get('static'), {
    name: 'static',
    lbPolicy: 'ROUND_ROBIN',
    connectTimeoutMs: 5000,
    protocol: 'http1',
    endpoints: [{ host: '127.0.0.1', port: 8080, weight: 1, healthy: true }],
  });
});

test('an EDS cluster whose assignment has not arrived has no endpoints and is pending', () => {
  const set = basicSet();
  set.endpoints = [];
  const { config, pending } = ok(set);
  assert.deepEqual(config.clusters.get('c')?.endpoints, []);
  assert.deepEqual(pending, { listeners: [], routeConfigs: [], endpoints: ['c'] });
});

test('a cluster used by both a TCP proxy and a route speaks HTTP', () => {
  const set = basicSet();
  set.listeners!.push(tcpListener('outbound|15432', 15432, 'c'));
  assert.equal(ok(set).config.clusters.get('c')?.protocol, 'http1');
});

test('unsupported cluster and assignment fields and values are named', () => {
  assert.deepEqual(
    problems({
      clusters: [
        edsCluster('ring', { lb_policy: 'RING_HASH' }),
        edsCluster('cb', { circuit_breakers: { thresholds: [{ max_connections: { value: 1 } }] } }),
        { name: 'dns', type: 'STRICT_DNS' },
        edsCluster('tls', { transport_socket: { name: 'tls' } }),
        edsCluster('auto', {
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              auto_config: {},
            },
          },
        }),
      ],
      endpoints: [
        { cluster_name: 'p1', endpoints: [{ priority: 1 }] },
        { cluster_name: 'pol', policy: { overprovisioning_factor: { value: 140 } } },
        assignment('hc', [{ host: '10.0.0.1', port: 1 }], {
          endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 1 } }, hostname: 'h' },
        }),
      ],
    }),
    [
      'Cluster "ring": lb_policy is RING_HASH, which is not supported by the Weft sidecar (supported: ROUND_ROBIN, LEAST_REQUEST)',
      'Cluster "cb": circuit_breakers is not supported by the Weft sidecar',
      'Cluster "dns": type is STRICT_DNS, which is not supported by the Weft sidecar (supported: STATIC, EDS)',
      'Cluster "tls": transport_socket is not supported by the Weft sidecar',
      'Cluster "auto": typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].auto_config is not supported by the Weft sidecar',
      'Cluster "auto": typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].explicit_http_config is required',
      'ClusterLoadAssignment "p1": endpoints[0].priority: 1 is not supported by the Weft sidecar (only priority 0)',
      'ClusterLoadAssignment "pol": policy is not supported by the Weft sidecar',
      'ClusterLoadAssignment "hc": endpoints[0].lb_endpoints[0].endpoint.hostname is not supported by the Weft sidecar',
    ],
  );
});

test('semantic cluster and endpoint problems', () => {
  assert.deepEqual(
    problems({
      clusters: [
        edsCluster('zero', { connect_timeout: { seconds: 0, nanos: 0 } }),
        { name: 'eds-no-config', type: 'EDS' },
        { name: 'static-no-la' },
        edsCluster('eds-with-la', { load_assignment: assignment('x', []) }),
      ],
      endpoints: [
        assignment('bad', [
          { host: 'db.local', port: 5432 },
          { host: '10.0.0.1', port: 0 },
          { host: '10.0.0.2', port: 80 },
          { host: '10.0.0.2', port: 80 },
        ]),
      ],
    }),
    [
      'Cluster "zero": connect_timeout: must be > 0',
      'Cluster "eds-no-config": eds_cluster_config is required for an EDS cluster',
      'Cluster "static-no-la": load_assignment is required for a STATIC cluster',
      'Cluster "eds-with-la": load_assignment is only for STATIC clusters (EDS provides it)',
      'ClusterLoadAssignment "bad": endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address: "db.local" is not an IP address',
      'ClusterLoadAssignment "bad": endpoints[0].lb_endpoints[1].endpoint.address.socket_address.port_value: 0 is not a port (1-65535)',
    ],
  );
});

test('every problem in every resource type is reported at once', () => {
  const set = basicSet();
  set.listeners = [httpListener('outbound', 15001, { use_remote_address: { value: true } })];
  set.routes = [
    routeConfig('outbound', [{ match: { prefix: '/' }, route: { cluster: 'c', retry_policy: {} } }]),
  ];
  set.clusters = [edsCluster('c', { lb_policy: 'MAGLEV' })];
  set.endpoints = [{ cluster_name: 'c', endpoints: [{ priority: 2 }] }];
  assert.deepEqual(
    problems(set).map((p) => p.slice(0, p.indexOf(':'))),
    ['Listener "outbound"', 'RouteConfiguration "outbound"', 'Cluster "c"', 'ClusterLoadAssignment "c"'],
  );
});

test('the same address twice is one endpoint, not a rejected assignment (a restarted sidecar)', () => {
  const set = basicSet();
  set.endpoints = [
    assignment('c', [
      { host: '10.0.0.1', port: 80 },
      { host: '10.0.0.2', port: 80 },
      { host: '10.0.0.1', port: 80 },
    ]),
  ];
  const { config } = ok(set);
  assert.deepEqual(
    config.clusters.get('c')!.endpoints.map((e) => `${e.host}:${e.port}`),
    ['10.0.0.1:80', '10.0.0.2:80'],
  );
});
