// Translator: the HTTP RBAC filter ahead of the router, the network RBAC filter ahead of
// tcp_proxy, and the fields the sidecar refuses with their paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROUTER_FILTER, basicSet, listener, ok, problems, tcpListener } from './fixtures.js';

const HTTP_RBAC = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
const NETWORK_RBAC = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';

const POLICY = {
  permissions: [
    {
      and_rules: {
        rules: [
          { header: { name: ':method', string_match: { exact: 'GET' } } },
          { url_path: { path: { prefix: '/api/' } } },
        ],
      },
    },
  ],
  principals: [{ authenticated: { principal_name: { exact: 'spiffe://weft.local/ns/default/sa/fe' } } }],
};

function rbacFilter(action: string, policies: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    name: 'envoy.filters.http.rbac',
    typed_config: {
      '@type': HTTP_RBAC,
      rules: { action, policies },
      rules_stat_prefix: 'Service/default/be',
      ...extra,
    },
  };
}

test('HTTP RBAC filters ahead of the router become the listener rbac, in order, policies by name', () => {
  const set = basicSet();
  set.listeners = [
    listener('inbound|15006', 15006, {
      '@type':
        'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
      stat_prefix: 'inbound',
      rds: { route_config_name: 'outbound', config_source: { ads: {} } },
      http_filters: [
        rbacFilter('DENY', {
          'b/deny': { permissions: [{ any: true }], principals: [{ not_id: { any: true } }] },
        }),
        rbacFilter('ALLOW', {
          'z/second': POLICY,
          'a/first': { permissions: [{ destination_port: 15006 }], principals: [{ any: true }] },
        }),
        ROUTER_FILTER,
      ],
    }),
  ];
  const { config } = ok(set);
  const l = config.listeners[0]!;
  assert.equal(l.kind, 'http');
  assert.deepEqual(l.rbac, [
    {
      action: 'DENY',
      statPrefix: 'Service/default/be',
      policies: [{ name: 'b/deny', permissions: [{ any: true }], principals: [{ not: { any: true } }] }],
    },
    {
      action: 'ALLOW',
      statPrefix: 'Service/default/be',
      policies: [
        { name: 'a/first', permissions: [{ destinationPort: 15006 }], principals: [{ any: true }] },
        {
          name: 'z/second',
          permissions: [
            {
              and: [
                { header: { name: ':method', value: { exact: 'GET' } } },
                { urlPath: { prefix: '/api/' } },
              ],
            },
          ],
          principals: [
            { authenticated: true, principalName: { exact: 'spiffe://weft.local/ns/default/sa/fe' } },
          ],
        },
      ],
    },
  ]);
});

test('network RBAC ahead of tcp_proxy is checked at accept', () => {
  const set = basicSet();
  const tcp = tcpListener('inbound|9000', 9000, 'c');
  const chain = (tcp.filter_chains as Array<{ filters: unknown[] }>)[0]!;
  chain.filters.unshift({
    name: 'envoy.filters.network.rbac',
    typed_config: {
      '@type': NETWORK_RBAC,
      stat_prefix: 'Service/default/db',
      rules: {
        action: 'DENY',
        policies: { p: { permissions: [{ any: true }], principals: [{ authenticated: {} }] } },
      },
    },
  });
  set.listeners = [...set.listeners!, tcp];
  const { config } = ok(set);
  const l = config.listeners.find((x) => x.name === 'inbound|9000')!;
  assert.deepEqual(l.kind === 'tcp' ? l.rbac : undefined, [
    {
      action: 'DENY',
      statPrefix: 'Service/default/db',
      policies: [{ name: 'p', permissions: [{ any: true }], principals: [{ authenticated: true }] }],
    },
  ]);
});

test('RBAC fields outside the subset are refused with their paths', () => {
  const set = basicSet();
  set.listeners = [
    listener('outbound', 15001, {
      '@type':
        'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
      stat_prefix: 'o',
      rds: { route_config_name: 'outbound', config_source: { ads: {} } },
      http_filters: [
        rbacFilter(
          'LOG',
          {
            p: {
              permissions: [{ requested_server_name: { exact: 'x' } }],
              principals: [{ source_ip: { address_prefix: '10.0.0.0', prefix_len: { value: 8 } } }],
            },
          },
          { shadow_rules: { action: 'DENY' } },
        ),
        ROUTER_FILTER,
      ],
    }),
  ];
  const p = problems(set);
  const base = 'Listener "outbound": filter_chains[0].filters[0].typed_config.http_filters[0].typed_config';
  assert.ok(
    p.includes(
      `${base}.rules.action is LOG, which is not supported by the Weft sidecar (supported: ALLOW, DENY)`,
    ),
    p.join('\n'),
  );
  assert.ok(
    p.includes(
      `${base}.rules.policies.p.permissions[0].requested_server_name is not supported by the Weft sidecar`,
    ),
    p.join('\n'),
  );
  assert.ok(
    p.includes(`${base}.rules.policies.p.principals[0].source_ip is not supported by the Weft sidecar`),
    p.join('\n'),
  );
  assert.ok(p.includes(`${base}.shadow_rules is not supported by the Weft sidecar`), p.join('\n'));
});

test('network RBAC ahead of an HttpConnectionManager, or without a tcp_proxy after it, is refused', () => {
  const rbac = { name: 'r', typed_config: { '@type': NETWORK_RBAC, stat_prefix: 's', rules: {} } };
  const set = basicSet();
  const http = set.listeners![0] as { filter_chains: Array<{ filters: unknown[] }> };
  http.filter_chains[0]!.filters.unshift(rbac);
  assert.match(
    problems(set).join('\n'),
    /network\.rbac\.v3\.RBAC filter is supported only ahead of a tcp_proxy/,
  );
  const alone = basicSet();
  alone.listeners = [...alone.listeners!, listener('t', 9001, rbac.typed_config)];
  assert.match(problems(alone).join('\n'), /must be followed by a tcp_proxy/);
});
