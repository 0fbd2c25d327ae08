// Translator: RouteConfigurations — matches, actions, header edits — and their refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ForwardAction, Route } from '../../../../src/sidecar/runtime-config.js';
import { basicSet, ok, problems, routeConfig, type RawSet } from './fixtures.js';

type Obj = Record<string, unknown>;

function withRoutes(routes: Obj[], domains?: string[]): RawSet {
  return { ...basicSet(), routes: [routeConfig('outbound', routes, domains)] };
}

function routesOf(routes: Obj[]): Route[] {
  return ok(withRoutes(routes)).config.routes.get('outbound')!.virtualHosts[0]!.routes;
}

function forward(route: Obj): ForwardAction {
  const action = routesOf([{ name: 'r', match: { prefix: '/' }, ...route }])[0]!.action;
  assert.equal(action.kind, 'forward');
  return action as ForwardAction;
}

test('virtual hosts keep their order, names and (lower-cased) domains', () => {
  const set = basicSet();
  set.routes = [
    {
      name: 'outbound',
      virtual_hosts: [
        {
          name: 'a',
          domains: ['A.example', 'a.example:80'],
          routes: [{ match: { prefix: '/' }, route: { cluster: 'c' } }],
        },
        { name: 'b', domains: ['*.b.example', 'b*', '*'], routes: [] },
      ],
    },
  ];
  const table = ok(set).config.routes.get('outbound')!;
  assert.equal(table.name, 'outbound');
  assert.deepEqual(
    table.virtualHosts.map((v) => [v.name, v.domains]),
    [
      ['a', ['a.example', 'a.example:80']],
      ['b', ['*.b.example', 'b*', '*']],
    ],
  );
});

test('path matches: prefix, exact, RE2 regex matched against the whole path, case sensitivity', () => {
  const routes = routesOf([
    { name: 'p', match: { prefix: '/api/' }, route: { cluster: 'c' } },
    { name: 'e', match: { path: '/exact', case_sensitive: { value: false } }, route: { cluster: 'c' } },
    { name: 'x', match: { safe_regex: { regex: '/a|/b' } }, route: { cluster: 'c' } },
    { name: 'n', match: { safe_regex: { regex: '/(?P<id>[0-9]+)\\z' } }, route: { cluster: 'c' } },
  ]);
  assert.deepEqual(routes[0]!.match, {
    path: { prefix: '/api/' },
    caseSensitive: true,
    headers: [],
    query: [],
  });
  assert.deepEqual(routes[1]!.match.path, { exact: '/exact' });
  assert.equal(routes[1]!.match.caseSensitive, false);
  const re = (routes[2]!.match.path as { regex: RegExp }).regex;
  assert.ok(re.test('/a') && re.test('/b'));
  assert.ok(!re.test('/ab') && !re.test('x/a'), 'the alternation must not escape the whole-value anchors');
  const named = (routes[3]!.match.path as { regex: RegExp }).regex;
  assert.equal(named.exec('/42')?.groups?.id, '42');
});

test('header matches: every matcher kind, presence, inversion; names lower-cased', () => {
  const [route] = routesOf([
    {
      match: {
        prefix: '/',
        headers: [
          { name: 'X-Exact', exact_match: 'a' },
          { name: 'x-prefix', prefix_match: 'p' },
          { name: 'x-suffix', suffix_match: 's' },
          { name: 'x-contains', contains_match: 'c' },
          { name: 'x-re', safe_regex_match: { regex: 'v[0-9]' } },
          { name: 'x-present', present_match: true },
          { name: 'x-bare' },
          { name: 'x-not', string_match: { exact: 'no' }, invert_match: true },
          { name: ':method', string_match: { exact: 'GET', ignore_case: true } },
          { name: 'x-sm-prefix', string_match: { prefix: 'a' } },
          { name: 'x-sm-suffix', string_match: { suffix: 'b' } },
          { name: 'x-sm-contains', string_match: { contains: 'c' } },
          { name: 'x-sm-re', string_match: { safe_regex: { regex: 'a+' } } },
        ],
      },
      route: { cluster: 'c' },
    },
  ]);
  const h = route!.match.headers;
  assert.deepEqual(h.slice(0, 4), [
    { name: 'x-exact', value: { exact: 'a' } },
    { name: 'x-prefix', value: { prefix: 'p' } },
    { name: 'x-suffix', value: { suffix: 's' } },
    { name: 'x-contains', value: { contains: 'c' } },
  ]);
  const re = (h[4]!.value as { regex: RegExp }).regex;
  assert.ok(re.test('v1') && !re.test('v12'));
  assert.deepEqual(h.slice(5, 12), [
    { name: 'x-present' },
    { name: 'x-bare' },
    { name: 'x-not', invert: true, value: { exact: 'no' } },
    { name: ':method', value: { exact: 'GET', ignoreCase: true } },
    { name: 'x-sm-prefix', value: { prefix: 'a' } },
    { name: 'x-sm-suffix', value: { suffix: 'b' } },
    { name: 'x-sm-contains', value: { contains: 'c' } },
  ]);
  assert.ok((h[12]!.value as { regex: RegExp }).regex.test('aaa'));
});

test('query parameter matches: string_match and presence', () => {
  const [route] = routesOf([
    {
      match: {
        prefix: '/',
        query_parameters: [
          { name: 'debug', string_match: { exact: '1' } },
          { name: 'trace', present_match: true },
        ],
      },
      route: { cluster: 'c' },
    },
  ]);
  assert.deepEqual(route!.match.query, [{ name: 'debug', value: { exact: '1' } }, { name: 'trace' }]);
});

test('forward: one cluster, Envoy default timeout of 15 s, explicit 0 meaning none', () => {
  assert.deepEqual(forward({ route: { cluster: 'c' } }), {
    kind: 'forward',
    clusters: [{ name: 'c', weight: 1 }],
    totalWeight: 1,
    timeoutMs: 15_000,
    mirrors: [],
  });
  assert.equal(forward({ route: { cluster: 'c', timeout: { seconds: 0, nanos: 0 } } }).timeoutMs, 0);
  assert.equal(
    forward({ route: { cluster: 'c', timeout: { seconds: 2, nanos: 250_000_000 } } }).timeoutMs,
    2250,
  );
});

test('forward: weighted clusters, rewrites, mirrors', () => {
  const a = forward({
    route: {
      weighted_clusters: {
        clusters: [
          { name: 'v1', weight: { value: 90 } },
          { name: 'v2', weight: { value: 10 } },
        ],
      },
      prefix_rewrite: '/v2/',
      host_rewrite_literal: 'backend.internal',
      request_mirror_policies: [
        { cluster: 'shadow' },
        { cluster: 'half', runtime_fraction: { default_value: { numerator: 50 } } },
        { cluster: 'tiny', runtime_fraction: { default_value: { numerator: 25, denominator: 'MILLION' } } },
        {
          cluster: 'ten-k',
          runtime_fraction: { default_value: { numerator: 20_000, denominator: 'TEN_THOUSAND' } },
        },
      ],
    },
  });
  assert.deepEqual(a.clusters, [
    { name: 'v1', weight: 90 },
    { name: 'v2', weight: 10 },
  ]);
  assert.equal(a.totalWeight, 100);
  assert.equal(a.prefixRewrite, '/v2/');
  assert.equal(a.hostRewrite, 'backend.internal');
  assert.deepEqual(a.mirrors, [
    { cluster: 'shadow', fraction: 1 },
    { cluster: 'half', fraction: 0.5 },
    { cluster: 'tiny', fraction: 0.000025 },
    { cluster: 'ten-k', fraction: 1 },
  ]);
});

test('regex_rewrite replaces every match, with RE2 group references turned into JavaScript ones', () => {
  const whole = forward({
    route: { cluster: 'c', regex_rewrite: { pattern: { regex: '^.*$' }, substitution: '/new' } },
  });
  assert.equal('/old/path'.replace(whole.regexRewrite!.pattern, whole.regexRewrite!.substitution), '/new');
  const groups = forward({
    route: {
      cluster: 'c',
      regex_rewrite: { pattern: { regex: '/v(\\d+)/' }, substitution: '/version-\\1/$' },
    },
  });
  assert.equal(
    '/v1/a/v2/b'.replace(groups.regexRewrite!.pattern, groups.regexRewrite!.substitution),
    '/version-1/$a/version-2/$b',
  );
});

test('redirect: every field and every response code', () => {
  const codes = {
    MOVED_PERMANENTLY: 301,
    FOUND: 302,
    SEE_OTHER: 303,
    TEMPORARY_REDIRECT: 307,
    PERMANENT_REDIRECT: 308,
  };
  const routes = routesOf(
    Object.keys(codes).map((code) => ({
      match: { prefix: '/' },
      redirect: { response_code: code, path_redirect: '/p' },
    })),
  );
  assert.deepEqual(
    routes.map((r) => r.action.kind === 'redirect' && r.action.status),
    Object.values(codes),
  );
  const [full, https, dflt] = routesOf([
    {
      match: { prefix: '/' },
      redirect: {
        scheme_redirect: 'http',
        host_redirect: 'h.example',
        port_redirect: 8443,
        prefix_rewrite: '/new/',
      },
    },
    { match: { prefix: '/' }, redirect: { https_redirect: true } },
    { match: { prefix: '/' }, redirect: {} },
  ]);
  assert.deepEqual(full!.action, {
    kind: 'redirect',
    status: 301,
    scheme: 'http',
    host: 'h.example',
    port: 8443,
    prefixRewrite: '/new/',
  });
  assert.deepEqual(https!.action, { kind: 'redirect', status: 301, scheme: 'https' });
  assert.deepEqual(dflt!.action, { kind: 'redirect', status: 301 });
});

test('direct response: status and inline body', () => {
  const [withBody, bare] = routesOf([
    { match: { prefix: '/' }, direct_response: { status: 418, body: { inline_string: 'teapot' } } },
    { match: { prefix: '/' }, direct_response: { status: 204 } },
  ]);
  assert.deepEqual(withBody!.action, { kind: 'direct', status: 418, body: 'teapot' });
  assert.deepEqual(bare!.action, { kind: 'direct', status: 204 });
});

test('header edits: append actions (and the legacy append flag), removals, lower-cased names', () => {
  const [route] = routesOf([
    {
      match: { prefix: '/' },
      route: { cluster: 'c' },
      request_headers_to_add: [
        { header: { key: 'X-Append', value: '1' } },
        { header: { key: 'x-append2', value: '2' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' },
        { header: { key: 'x-absent', value: '3' }, append_action: 'ADD_IF_ABSENT' },
        { header: { key: 'x-set', value: '4' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
        { header: { key: 'x-legacy-set', value: '5' }, append: { value: false } },
        { header: { key: 'x-legacy-add', value: '6' }, append: { value: true } },
      ],
      request_headers_to_remove: ['X-Remove'],
      response_headers_to_add: [
        { header: { key: 'x-served-by', value: 'weft' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      ],
      response_headers_to_remove: ['server'],
    },
  ]);
  assert.deepEqual(route!.headers, {
    requestAdd: [
      { name: 'x-append', value: '1', action: 'append' },
      { name: 'x-append2', value: '2', action: 'append' },
      { name: 'x-absent', value: '3', action: 'addIfAbsent' },
      { name: 'x-set', value: '4', action: 'overwrite' },
      { name: 'x-legacy-set', value: '5', action: 'overwrite' },
      { name: 'x-legacy-add', value: '6', action: 'append' },
    ],
    requestRemove: ['x-remove'],
    responseAdd: [{ name: 'x-served-by', value: 'weft', action: 'overwrite' }],
    responseRemove: ['server'],
  });
});

test('a route to a cluster CDS does not have is kept (it answers 503 at request time, as in Envoy)', () => {
  const action = forward({ route: { cluster: 'not-in-cds' } });
  assert.deepEqual(action.clusters, [{ name: 'not-in-cds', weight: 1 }]);
});

test('unsupported route fields and values are named with their path', () => {
  assert.deepEqual(
    problems(
      withRoutes([
        { match: { prefix: '/' }, route: { cluster: 'c', retry_policy: { num_retries: { value: 2 } } } },
        { match: { prefix: '/', grpc: {} }, route: { cluster: 'c' } },
        {
          match: { prefix: '/' },
          route: { cluster: 'c' },
          typed_per_filter_config: {},
          decorator: { operation: 'x' },
        },
        { match: { path_separated_prefix: '/a' }, route: { cluster: 'c' } },
        { match: { prefix: '/' }, route: { cluster_header: 'x-cluster' } },
        {
          match: { prefix: '/' },
          route: {
            cluster: 'c',
            request_mirror_policies: [
              { cluster: 'm', runtime_fraction: { default_value: { numerator: 1 }, runtime_key: 'k' } },
            ],
          },
        },
        { match: { prefix: '/' }, redirect: { response_code: 'FOUND', strip_query: true } },
        {
          match: { prefix: '/' },
          route: { cluster: 'c' },
          request_headers_to_add: [
            { header: { key: 'x', value: 'y' }, append_action: 'OVERWRITE_IF_EXISTS' },
          ],
        },
      ]),
    ),
    [
      'RouteConfiguration "outbound": virtual_hosts[0].routes[0].route.retry_policy is not supported by the Weft sidecar',
      'RouteConfiguration "outbound": virtual_hosts[0].routes[1].match.grpc is not supported by the Weft sidecar',
      'RouteConfiguration "outbound": virtual_hosts[0].routes[2].decorator is not supported by the Weft sidecar',
      'RouteConfiguration "outbound": virtual_hosts[0].routes[3].match.path_separated_prefix is not supported by the Weft sidecar',
      'RouteConfiguration "outbound": virtual_hosts[0].routes[3].match: one of prefix, path, safe_regex is required',
      'RouteConfiguration "outbound": virtual_hosts[0].routes[4].route.cluster_header is not supported by the Weft sidecar',
      'RouteConfiguration "outbound": virtual_hosts[0].routes[4].route: one of cluster, weighted_clusters is required',
      'RouteConfiguration "outbound": virtual_hosts[0].routes[5].route.request_mirror_policies[0].runtime_fraction.runtime_key is not supported by the Weft sidecar',
      'RouteConfiguration "outbound": virtual_hosts[0].routes[6].redirect.strip_query is not supported by the Weft sidecar',
      'RouteConfiguration "outbound": virtual_hosts[0].routes[7].request_headers_to_add[0].append_action is OVERWRITE_IF_EXISTS, which is not supported by the Weft sidecar (supported: APPEND_IF_EXISTS_OR_ADD, ADD_IF_ABSENT, OVERWRITE_IF_EXISTS_OR_ADD)',
    ],
  );
});

test('semantic problems: weights, regexes, domains, headers Envoy will not edit, statuses', () => {
  const set = withRoutes([
    {
      match: { prefix: '/' },
      route: { weighted_clusters: { clusters: [{ name: 'a', weight: { value: 0 } }, { name: 'b' }] } },
    },
    { match: { safe_regex: { regex: '/(?=x)' } }, route: { cluster: 'c' } },
    {
      match: { prefix: '/', headers: [{ name: 'x', safe_regex_match: { regex: '(' } }] },
      route: { cluster: 'c' },
    },
    {
      match: { prefix: '/' },
      route: { cluster: 'c' },
      request_headers_to_add: [{ header: { key: ':path', value: '/x' } }],
      response_headers_to_remove: ['Host'],
    },
    { match: { prefix: '/' }, direct_response: { status: 600 } },
    { match: { prefix: '/' }, route: { weighted_clusters: {} } },
  ]);
  set.routes!.push({
    name: 'dup',
    virtual_hosts: [
      { name: 'one', domains: ['a.example', 'b*c'], routes: [] },
      { name: 'two', domains: ['A.example'], routes: [] },
      { name: 'three', routes: [] },
    ],
  });
  assert.deepEqual(problems(set), [
    'RouteConfiguration "outbound": virtual_hosts[0].routes[0].route.weighted_clusters.clusters: total weight must be > 0',
    'RouteConfiguration "outbound": virtual_hosts[0].routes[1].match.safe_regex.regex: "/(?=x)" uses a lookahead "(?=…)", which RE2 does not support',
    'RouteConfiguration "outbound": virtual_hosts[0].routes[2].match.headers[0].safe_regex_match.regex: "(" is not a valid regular expression: /(/: Unterminated group',
    'RouteConfiguration "outbound": virtual_hosts[0].routes[3].request_headers_to_add[0].header.key: ":path" cannot be modified',
    'RouteConfiguration "outbound": virtual_hosts[0].routes[3].response_headers_to_remove[0]: "host" cannot be modified',
    'RouteConfiguration "outbound": virtual_hosts[0].routes[4].direct_response.status: 600 is not in [200, 599]',
    'RouteConfiguration "outbound": virtual_hosts[0].routes[5].route.weighted_clusters.clusters: must list at least one cluster',
    'RouteConfiguration "dup": virtual_hosts[0].domains[1]: "b*c": a wildcard must be the whole domain, its first or its last character',
    'RouteConfiguration "dup": virtual_hosts[1].domains[0]: "a.example" is already a domain of virtual host "one"',
    'RouteConfiguration "dup": virtual_hosts[2].domains: must list at least one domain',
  ]);
});

test('header names must be tokens and values must not split a head: NACK, not an error per request', () => {
  const set = withRoutes([
    {
      match: { prefix: '/' },
      route: { cluster: 'c', host_rewrite_literal: 'evil\r\nx-injected: 1', prefix_rewrite: '/a\nb' },
      request_headers_to_add: [
        { header: { key: 'bad name', value: 'v' } },
        { header: { key: 'x-ok', value: 'line\r\nbreak' } },
      ],
    },
    { match: { prefix: '/r' }, redirect: { host_redirect: 'h\r\nx: y' } },
  ]);
  assert.deepEqual(problems(set), [
    'RouteConfiguration "outbound": virtual_hosts[0].routes[0].route.host_rewrite_literal: must not contain CR, LF or NUL (they would split the request or response head)',
    'RouteConfiguration "outbound": virtual_hosts[0].routes[0].route.prefix_rewrite: must not contain CR, LF or NUL (they would split the request or response head)',
    'RouteConfiguration "outbound": virtual_hosts[0].routes[0].request_headers_to_add[0].header.key: "bad name" is not a valid header name (RFC 9110 token)',
    'RouteConfiguration "outbound": virtual_hosts[0].routes[0].request_headers_to_add[1].header.value: must not contain CR, LF or NUL (they would split the request or response head)',
    'RouteConfiguration "outbound": virtual_hosts[0].routes[1].redirect.host_redirect: must not contain CR, LF or NUL (they would split the request or response head)',
  ]);
});
