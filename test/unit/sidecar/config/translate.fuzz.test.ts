// Fuzzing the translator, which reads what the network hands over: valid resources mutated at
// random paths, and arbitrary objects, must never make it throw; it returns a config or a
// non-empty list of problems. A seed corpus of shapes that once looked risky runs every time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatProblem, translate, type XdsResources } from '../../../../src/sidecar/config/translate.js';
import { basicSet, resources, tcpListener, VERSIONS, HCM, ROUTER_FILTER, listener } from './fixtures.js';

type Kind = keyof XdsResources;
const KINDS: Kind[] = ['listeners', 'routes', 'clusters', 'endpoints'];

function check(set: XdsResources): void {
  const r = translate({ ...set, versions: VERSIONS });
  if (r.ok) {
    assert.ok(Array.isArray(r.config.listeners));
  } else {
    assert.ok(r.problems.length > 0);
    for (const p of r.problems) assert.equal(typeof formatProblem(p), 'string');
  }
}

const base = (() => {
  const set = basicSet({
    request_headers_to_add: [{ header: { key: 'x', value: 'y' }, append_action: 'ADD_IF_ABSENT' }],
  });
  // Network RBAC ahead of the tcp_proxy: nested and/or/not principals.
  const tcp = tcpListener('outbound|15432', 15432, 'c');
  (tcp.filter_chains as Array<{ filters: unknown[] }>)[0]!.filters.unshift({
    name: 'rbac',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC',
      stat_prefix: 's',
      rules: {
        action: 'DENY',
        policies: {
          p: {
            permissions: [{ not_rule: { destination_port: 1 } }],
            principals: [
              {
                and_ids: {
                  ids: [{ authenticated: { principal_name: { prefix: 'spiffe://x/' } } }, { any: true }],
                },
              },
              { not_id: { or_ids: { ids: [{ authenticated: {} }] } } },
            ],
          },
        },
      },
    },
  });
  set.listeners!.push(tcp);
  set.listeners!.push(
    listener('inbound|15006', 15006, {
      '@type': HCM,
      stat_prefix: 'in',
      route_config: {
        name: 'in',
        virtual_hosts: [
          {
            name: 'in',
            domains: ['*'],
            routes: [
              {
                match: {
                  safe_regex: { regex: '/a.*' },
                  headers: [{ name: 'x', string_match: { exact: 'y' } }],
                },
                route: { weighted_clusters: { clusters: [{ name: 'c', weight: { value: 1 } }] } },
              },
            ],
          },
        ],
      },
      http_filters: [
        {
          name: 'rbac',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
            rules_stat_prefix: 'Service/default/in',
            rules: {
              policies: {
                'AuthorizationPolicy/default/a': {
                  permissions: [
                    {
                      and_rules: {
                        rules: [
                          { header: { name: ':method', string_match: { exact: 'GET' } } },
                          {
                            or_rules: { rules: [{ url_path: { path: { safe_regex: { regex: '/a/.*' } } } }] },
                          },
                        ],
                      },
                    },
                  ],
                  principals: [{ authenticated: { principal_name: { exact: 'spiffe://x/ns/a/sa/b' } } }],
                },
              },
            },
          },
        },
        ROUTER_FILTER,
      ],
    }),
  );
  return resources(set);
})();

/** Every path (list of keys) to a value inside `v`. */
function paths(v: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [prefix];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...prefix, i])));
  else if (typeof v === 'object' && v !== null) {
    for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...prefix, k]));
  }
  return out;
}

type Mutation = { op: 'delete' } | { op: 'set'; value: unknown } | { op: 'add'; key: string; value: unknown };

function mutate(root: unknown, path: Array<string | number>, m: Mutation): unknown {
  const copy = structuredClone(root) as unknown;
  if (path.length === 0) return m.op === 'set' ? m.value : copy;
  let parent = copy as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (m.op === 'delete') delete parent[last];
  else if (m.op === 'set') parent[last] = m.value;
  else {
    const target = parent[last];
    // Lists from the wire never carry named properties, so keys are only added to objects.
    if (typeof target === 'object' && target !== null && !Array.isArray(target)) {
      (target as Record<string, unknown>)[m.key] = m.value;
    }
  }
  return copy;
}

const fieldNames = fc.constantFrom(
  'name',
  'address',
  'filter_chains',
  'typed_config',
  '@type',
  'rds',
  'route_config',
  'http_filters',
  'virtual_hosts',
  'routes',
  'match',
  'route',
  'cluster',
  'weighted_clusters',
  'endpoints',
  'lb_endpoints',
  'is_optional',
  'safe_regex',
  'regex',
  'unknown_field',
  '__proto__',
  'constructor',
);
const values = fc.oneof(
  fc.anything(),
  fc.constantFrom(
    '',
    '*',
    '(',
    '/(?=a)',
    'EDS',
    'HTTP2',
    'type.googleapis.com/x',
    HCM,
    -1,
    2 ** 40,
    NaN,
    [],
    {},
    null,
  ),
);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.constant<Mutation>({ op: 'delete' }),
  values.map((value): Mutation => ({ op: 'set', value })),
  fc
    .record({ key: fieldNames, value: values })
    .map(({ key, value }): Mutation => ({ op: 'add', key, value })),
);

test('fuzz: valid resources mutated at random paths never make the translator throw', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...KINDS),
      fc.nat(),
      fc.array(fc.tuple(fc.nat(), mutation), { minLength: 1, maxLength: 4 }),
      (kind, which, muts) => {
        const entries = [...base[kind]];
        const [name, original] = entries[which % entries.length]!;
        let obj: unknown = original;
        for (const [at, m] of muts) {
          const all = paths(obj);
          obj = mutate(obj, all[at % all.length]!, m);
        }
        const set = { ...base, [kind]: new Map([...base[kind], [name, obj]]) };
        check(set);
      },
    ),
    { numRuns: 1500 },
  );
});

test('fuzz: arbitrary objects as resources of every type never make the translator throw', () => {
  const anyResources = fc.dictionary(fc.string({ maxLength: 5 }), fc.anything({ maxDepth: 5 }), {
    maxKeys: 3,
  });
  fc.assert(
    fc.property(anyResources, anyResources, anyResources, anyResources, (l, r, c, e) => {
      check({
        listeners: new Map(Object.entries(l)),
        routes: new Map(Object.entries(r)),
        clusters: new Map(Object.entries(c)),
        endpoints: new Map(Object.entries(e)),
      });
    }),
    { numRuns: 500 },
  );
});

test('seed corpus: shapes that once looked risky', () => {
  const corpus: Array<[Kind, unknown]> = [
    ['listeners', null],
    ['listeners', []],
    ['listeners', { name: 'x', address: {}, filter_chains: [null] }],
    [
      'listeners',
      {
        name: 'x',
        address: { socket_address: { address: '1.2.3.4' } },
        filter_chains: [{ filters: [{ typed_config: { '@type': 7 } }] }],
      },
    ],
    [
      'listeners',
      {
        name: 'x',
        address: { socket_address: { address: '1.2.3.4' } },
        filter_chains: [
          { filters: [{ typed_config: { '@type': HCM, http_filters: [{ is_optional: true }] } }] },
        ],
      },
    ],
    ['routes', { virtual_hosts: [{ name: 'v', routes: [{ match: { prefix: 1 }, route: {} }] }] }],
    [
      'routes',
      {
        virtual_hosts: [
          {
            name: 'v',
            domains: ['*'],
            routes: [{ match: { safe_regex: {} }, route: { weighted_clusters: { clusters: [{}] } } }],
          },
        ],
      },
    ],
    ['routes', JSON.parse('{"__proto__": {"polluted": true}, "virtual_hosts": []}') as unknown],
    ['clusters', { name: 'c', type: 'EDS', typed_extension_protocol_options: { x: 1 } }],
    ['clusters', { name: 'c', connect_timeout: { seconds: -1 } }],
    ['endpoints', { cluster_name: 'c', endpoints: [{ lb_endpoints: [{ endpoint: {} }] }] }],
    [
      'endpoints',
      {
        cluster_name: 'c',
        endpoints: [
          {
            lb_endpoints: [
              { endpoint: { address: { socket_address: { address: '1.2.3.4', port_value: 1e9 } } } },
            ],
          },
        ],
      },
    ],
  ];
  for (const [kind, obj] of corpus) {
    check({ ...base, [kind]: new Map([...base[kind], ['seed', obj]]) });
  }
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});
