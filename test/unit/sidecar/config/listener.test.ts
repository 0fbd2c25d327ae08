// Translator: Listeners, their HttpConnectionManager or tcp_proxy, and what the sidecar refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADS,
  HCM,
  ROUTER_FILTER,
  assignment,
  basicSet,
  edsCluster,
  httpListener,
  listener,
  ok,
  problems,
  routeConfig,
  tcpListener,
} from './fixtures.js';

test('an HTTP listener with RDS: address, direction, codec, limits and timeouts', () => {
  const set = basicSet();
  set.listeners = [
    httpListener(
      'outbound',
      15001,
      {
        codec_type: 'HTTP1',
        request_timeout: { seconds: 30, nanos: 0 },
        stream_idle_timeout: { seconds: 0, nanos: 500_000_000 },
        max_request_headers_kb: { value: 96 },
      },
      { traffic_direction: 'OUTBOUND' },
    ),
  ];
  const { config, pending } = ok(set);
  assert.deepEqual(config.listeners, [
    {
      name: 'outbound',
      direction: 'outbound',
      host: '127.0.0.1',
      port: 15001,
      kind: 'http',
      codec: 'http1',
      routeConfig: 'outbound',
      maxRequestHeadersBytes: 96 * 1024,
      requestTimeoutMs: 30_000,
      streamIdleTimeoutMs: 500,
    },
  ]);
  assert.deepEqual(pending, { listeners: [], routeConfigs: [], endpoints: [] });
  assert.deepEqual(config.versions, { listeners: '1', routes: '1', clusters: '1', endpoints: '1' });
});

test('codec AUTO is the default and HTTP2 is taken; direction falls back to the name', () => {
  const { config } = ok({
    listeners: [
      httpListener('inbound|15006', 15006, { codec_type: 'HTTP2' }),
      httpListener('outbound', 15001),
    ],
    routes: [routeConfig('outbound', [{ match: { prefix: '/' }, route: { cluster: 'c' } }])],
  });
  const [inbound, outbound] = config.listeners;
  assert.equal(inbound?.kind === 'http' && inbound.codec, 'http2');
  assert.equal(inbound?.direction, 'inbound');
  assert.equal(outbound?.kind === 'http' && outbound.codec, 'auto');
  assert.equal(outbound?.direction, 'outbound');
});

test('path normalization: normalize_path, merge_slashes and every escaped-slash action translate', () => {
  const listenerWith = (hcmExtra: Record<string, unknown>) => {
    const set = basicSet();
    set.listeners = [httpListener('outbound', 15001, hcmExtra)];
    const l = ok(set).config.listeners[0];
    return l?.kind === 'http' ? l.pathNormalization : assert.fail('not an HTTP listener');
  };
  assert.deepEqual(listenerWith({ normalize_path: { value: true }, merge_slashes: true }), {
    normalize: true,
    mergeSlashes: true,
    escapedSlashes: 'keep',
  });
  for (const [action, escapedSlashes] of [
    ['KEEP_UNCHANGED', 'keep'],
    ['REJECT_REQUEST', 'reject'],
    ['UNESCAPE_AND_FORWARD', 'unescapeAndForward'],
    ['UNESCAPE_AND_REDIRECT', 'unescapeAndRedirect'],
  ]) {
    assert.deepEqual(
      listenerWith({ normalize_path: { value: true }, path_with_escaped_slashes_action: action }),
      { normalize: true, mergeSlashes: false, escapedSlashes },
      action,
    );
  }
  // Envoy's defaults (all off, IMPLEMENTATION_SPECIFIC_DEFAULT = keep): the path goes as received.
  assert.equal(listenerWith({}), undefined);
  assert.equal(
    listenerWith({
      normalize_path: { value: false },
      path_with_escaped_slashes_action: 'IMPLEMENTATION_SPECIFIC_DEFAULT',
    }),
    undefined,
  );
  assert.deepEqual(listenerWith({ merge_slashes: true }), {
    normalize: false,
    mergeSlashes: true,
    escapedSlashes: 'keep',
  });
});

test('a TCP listener forwards to its cluster, which is then a tcp cluster', () => {
  const { config } = ok({
    listeners: [tcpListener('outbound|15432', 15432, 'db', { idle_timeout: { seconds: 60, nanos: 0 } })],
    clusters: [edsCluster('db')],
    endpoints: [assignment('db', [{ host: '10.0.0.9', port: 5432 }])],
  });
  assert.deepEqual(config.listeners, [
    {
      name: 'outbound|15432',
      direction: 'outbound',
      host: '127.0.0.1',
      port: 15432,
      kind: 'tcp',
      cluster: 'db',
      idleTimeoutMs: 60_000,
    },
  ]);
  assert.equal(config.clusters.get('db')?.protocol, 'tcp');
});

test('an inline route config becomes a route table named after it (or after the listener)', () => {
  const inline = {
    name: 'inbound|15006',
    virtual_hosts: [
      { name: 'in', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] },
    ],
  };
  const { config, pending } = ok({
    listeners: [
      listener('inbound|15006', 15006, {
        '@type': HCM,
        stat_prefix: 'in',
        route_config: inline,
        http_filters: [ROUTER_FILTER],
      }),
      listener('unnamed', 15007, {
        '@type': HCM,
        stat_prefix: 'x',
        route_config: { virtual_hosts: inline.virtual_hosts },
        http_filters: [ROUTER_FILTER],
      }),
    ],
  });
  assert.deepEqual([...config.routes.keys()].sort(), ['inbound|15006', 'unnamed']);
  const unnamed = config.listeners.find((l) => l.name === 'unnamed');
  assert.equal(unnamed?.kind === 'http' ? unnamed.routeConfig : undefined, 'unnamed');
  assert.deepEqual(pending.routeConfigs, []);
});

test('a listener whose route config has not arrived is warming: not served, and pending', () => {
  const { config, pending } = ok({ listeners: [httpListener('outbound', 15001)] });
  assert.deepEqual(config.listeners, []);
  assert.deepEqual(pending, { listeners: ['outbound'], routeConfigs: ['outbound'], endpoints: [] });
});

test('a listener switching to a route config not received yet keeps serving its previous form', () => {
  const first = ok(basicSet()).config;
  const set = basicSet();
  set.listeners = [
    httpListener('outbound', 15001, { rds: { route_config_name: 'next', config_source: ADS } }),
  ];
  set.routes = [];
  const { config, pending } = ok(set, first);
  assert.deepEqual(config.listeners, first.listeners);
  assert.ok(config.routes.has('outbound'));
  assert.deepEqual(pending.listeners, ['outbound']);
});

test('a field the sidecar does not implement is refused by path and resource', () => {
  const set = basicSet();
  set.listeners = [httpListener('outbound', 15001, { use_remote_address: { value: true } })];
  assert.deepEqual(problems(set), [
    'Listener "outbound": filter_chains[0].filters[0].typed_config.use_remote_address is not supported by the Weft sidecar',
  ]);
});

test('unsupported listener-level fields, enum values and network filters are named', () => {
  assert.deepEqual(
    problems({
      listeners: [
        httpListener('a', 1, { codec_type: 'HTTP3' }, { per_connection_buffer_limit_bytes: { value: 1024 } }),
        httpListener('b', 2, {}, { listener_filters: [{ name: 'original_dst' }] }),
        listener('c', 3, { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' }),
        httpListener('d', 4, { common_http_protocol_options: { idle_timeout: { seconds: 1, nanos: 0 } } }),
      ],
    }),
    [
      'Listener "a": filter_chains[0].filters[0].typed_config.codec_type is HTTP3, which is not supported by the Weft sidecar (supported: AUTO, HTTP1, HTTP2)',
      'Listener "a": per_connection_buffer_limit_bytes is not supported by the Weft sidecar',
      'Listener "b": listener_filters[0].typed_config is required',
      'Listener "c": filter_chains[0].filters[0].typed_config is envoy.extensions.filters.http.router.v3.Router, which is not supported by the Weft sidecar (supported: envoy.extensions.filters.network.rbac.v3.RBAC, envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager, envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy)',
      'Listener "d": filter_chains[0].filters[0].typed_config.common_http_protocol_options is not supported by the Weft sidecar',
    ],
  );
});

test('HTTP filters: exactly the router; an optional unknown filter is skipped, a required one refused', () => {
  const fault = { '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault' };
  const set = basicSet();
  set.listeners = [
    httpListener('outbound', 15001, {
      http_filters: [{ name: 'fault', typed_config: fault, is_optional: true }, ROUTER_FILTER],
    }),
  ];
  assert.equal(ok(set).config.listeners.length, 1);

  assert.deepEqual(
    problems({
      listeners: [
        httpListener('a', 1, { http_filters: [{ name: 'fault', typed_config: fault }, ROUTER_FILTER] }),
        httpListener('b', 2, { http_filters: [] }),
        httpListener('c', 3, { http_filters: [ROUTER_FILTER, ROUTER_FILTER] }),
      ],
    }),
    [
      'Listener "a": filter_chains[0].filters[0].typed_config.http_filters[0].typed_config is envoy.extensions.filters.http.fault.v3.HTTPFault, which is not supported by the Weft sidecar (supported: envoy.extensions.filters.http.rbac.v3.RBAC, envoy.extensions.filters.http.router.v3.Router)',
      'Listener "b": filter_chains[0].filters[0].typed_config.http_filters: must be exactly one envoy.extensions.filters.http.router.v3.Router filter, last',
      'Listener "c": filter_chains[0].filters[0].typed_config.http_filters: must be exactly one envoy.extensions.filters.http.router.v3.Router filter, last',
    ],
  );
});

test('structural problems: chains, filters, addresses, config sources, limits', () => {
  const two = httpListener('two-chains', 10);
  two.filter_chains = [...(two.filter_chains as object[]), ...(two.filter_chains as object[])];
  const noFilter = httpListener('no-filter', 11);
  noFilter.filter_chains = [{ filters: [] }];
  const host = httpListener('hostname', 12);
  host.address = { socket_address: { address: 'localhost', port_value: 12 } };
  assert.deepEqual(
    problems({
      listeners: [
        two,
        noFilter,
        host,
        httpListener('self-source', 13, { rds: { route_config_name: 'r', config_source: { self: {} } } }),
        httpListener('big-headers', 14, { max_request_headers_kb: { value: 9000 } }),
        httpListener('dup-a', 20),
        httpListener('dup-b', 20),
      ],
    }),
    [
      'Listener "two-chains": filter_chains: two chains must match transport_protocol "tls" and "raw_buffer"',
      'Listener "no-filter": filter_chains[0].filters: must end in one envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager or envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, with only envoy.extensions.filters.network.rbac.v3.RBAC filters ahead of it (found 0 filters)',
      'Listener "hostname": address.socket_address.address: "localhost" is not an IP address',
      'Listener "self-source": filter_chains[0].filters[0].typed_config.rds.config_source.self is not supported by the Weft sidecar',
      'Listener "self-source": filter_chains[0].filters[0].typed_config.rds.config_source.ads is required',
      'Listener "big-headers": filter_chains[0].filters[0].typed_config.max_request_headers_kb: 9000 is not in [1, 8192]',
      'Listener "dup-b": address: 127.0.0.1:20 is also the address of listener "dup-a"',
    ],
  );
});

test('an inline route config may not take the name of an RDS one', () => {
  const set = basicSet();
  set.listeners!.push(
    listener('inbound|15006', 15006, {
      '@type': HCM,
      stat_prefix: 'in',
      route_config: { name: 'outbound', virtual_hosts: [] },
      http_filters: [ROUTER_FILTER],
    }),
  );
  assert.deepEqual(problems(set), [
    'Listener "inbound|15006": filter_chains[0].filters[0].typed_config.route_config.name: "outbound" is also the name of a RouteConfiguration from RDS; give the inline route config its own name',
  ]);
});
