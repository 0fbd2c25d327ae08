// Unit: virtual host selection (Envoy's domain precedence, ports) and route matching (path
// kinds, case sensitivity, headers with pseudo-headers and invert, query parameters), and the
// weighted cluster draw.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  pickWeightedCluster,
  selectRoute,
  selectVirtualHost,
  splitAuthority,
  type MatchInput,
} from '../../../../src/sidecar/proxy/router.js';
import type {
  ForwardAction,
  Route,
  RouteMatch,
  RouteTable,
  VirtualHost,
} from '../../../../src/sidecar/runtime-config.js';

const vh = (name: string, domains: string[], routes: Route[] = []): VirtualHost => ({
  name,
  domains,
  routes,
});
const table = (...virtualHosts: VirtualHost[]): RouteTable => ({ name: 't', virtualHosts });

function route(name: string, match: Partial<RouteMatch>): Route {
  return {
    name,
    match: { path: { prefix: '/' }, caseSensitive: true, headers: [], query: [], ...match },
    action: { kind: 'direct', status: 200 },
    headers: { requestAdd: [], requestRemove: [], responseAdd: [], responseRemove: [] },
  };
}

const input = (path: string, extra: Partial<MatchInput> = {}): MatchInput => ({
  method: 'GET',
  authority: 'svc',
  path,
  scheme: 'http',
  headers: {},
  ...extra,
});

test('domain precedence: exact, then longest suffix wildcard, then longest prefix wildcard, then *', () => {
  const t = table(
    vh('star', ['*']),
    vh('prefix-short', ['api*']),
    vh('prefix-long', ['api.v*']),
    vh('suffix-short', ['*.com']),
    vh('suffix-long', ['*.example.com']),
    vh('exact', ['api.example.com']),
  );
  assert.equal(selectVirtualHost(t, 'api.example.com')?.name, 'exact');
  assert.equal(selectVirtualHost(t, 'www.example.com')?.name, 'suffix-long');
  assert.equal(selectVirtualHost(t, 'www.other.com')?.name, 'suffix-short');
  assert.equal(selectVirtualHost(t, 'api.v2.local')?.name, 'prefix-long');
  assert.equal(selectVirtualHost(t, 'api-x')?.name, 'prefix-short');
  assert.equal(selectVirtualHost(t, 'nothing')?.name, 'star');
  assert.equal(selectVirtualHost(t, 'API.EXAMPLE.COM')?.name, 'exact', 'hosts are case-insensitive');
});

test('ports: a domain with a port matches only that port; one without matches any port', () => {
  const t = table(vh('svc-8080', ['svc:8080']), vh('svc', ['svc']), vh('v6', ['[::1]']));
  assert.equal(selectVirtualHost(t, 'svc:8080')?.name, 'svc-8080');
  assert.equal(selectVirtualHost(t, 'svc:9090')?.name, 'svc');
  assert.equal(selectVirtualHost(t, 'svc')?.name, 'svc');
  assert.equal(selectVirtualHost(t, '[::1]:80')?.name, 'v6');
  assert.equal(selectVirtualHost(t, 'other:8080'), undefined);
  assert.deepEqual(splitAuthority('[::1]:80'), { host: '[::1]', port: '80' });
  assert.deepEqual(splitAuthority('svc'), { host: 'svc' });
});

test('path matches: exact, prefix, regex (whole path, query ignored), case sensitivity', () => {
  const v = vh(
    'v',
    ['*'],
    [
      route('exact', { path: { exact: '/a' } }),
      route('ci-prefix', { path: { prefix: '/API/' }, caseSensitive: false }),
      route('regex', { path: { regex: /\/items\/\d+/ } }),
    ],
  );
  assert.equal(selectRoute(v, input('/a?x=1'))?.name, 'exact');
  assert.equal(selectRoute(v, input('/a/b')), undefined);
  assert.equal(selectRoute(v, input('/A')), undefined, 'exact is case-sensitive by default');
  assert.equal(selectRoute(v, input('/api/users'))?.name, 'ci-prefix');
  assert.equal(selectRoute(v, input('/items/42?y'))?.name, 'regex');
  assert.equal(selectRoute(v, input('/items/42/x')), undefined, 'regex must match the whole path');
});

test('header matches: values, presence, invert, repeated values joined, pseudo-headers', () => {
  const r = (name: string, headers: RouteMatch['headers']): Route => route(name, { headers });
  const v = vh(
    'v',
    ['*'],
    [
      r('canary', [{ name: 'x-canary', value: { exact: 'true' } }]),
      r('post-api', [
        { name: ':method', value: { exact: 'POST' } },
        { name: ':path', value: { prefix: '/api' } },
      ]),
      r('authority', [{ name: ':authority', value: { suffix: ':8443' } }]),
      r('no-debug', [{ name: 'x-debug', invert: true }]),
      r('fallback', []),
    ],
  );
  assert.equal(selectRoute(v, input('/', { headers: { 'x-canary': ['true'] } }))?.name, 'canary');
  assert.equal(
    selectRoute(v, input('/api/x', { method: 'POST', headers: { 'x-debug': ['1'] } }))?.name,
    'post-api',
  );
  assert.equal(
    selectRoute(v, input('/', { authority: 'svc:8443', headers: { 'x-debug': ['1'] } }))?.name,
    'authority',
  );
  assert.equal(selectRoute(v, input('/'))?.name, 'no-debug', 'inverted presence matches an absent header');
  assert.equal(selectRoute(v, input('/', { headers: { 'x-debug': ['1'] } }))?.name, 'fallback');

  const joined = vh('j', ['*'], [r('both', [{ name: 'x-v', value: { exact: 'a,b' } }])]);
  assert.equal(selectRoute(joined, input('/', { headers: { 'x-v': ['a', 'b'] } }))?.name, 'both');
  const ci = vh('ci', ['*'], [r('ci', [{ name: 'x-env', value: { exact: 'PROD', ignoreCase: true } }])]);
  assert.equal(selectRoute(ci, input('/', { headers: { 'x-env': ['prod'] } }))?.name, 'ci');
});

test('query matches: presence and value', () => {
  const v = vh(
    'v',
    ['*'],
    [
      route('v2', { query: [{ name: 'version', value: { exact: '2' } }] }),
      route('has-debug', { query: [{ name: 'debug' }] }),
      route('rest', {}),
    ],
  );
  assert.equal(selectRoute(v, input('/x?version=2'))?.name, 'v2');
  assert.equal(selectRoute(v, input('/x?version=3&debug'))?.name, 'has-debug');
  assert.equal(selectRoute(v, input('/x?a=%20'))?.name, 'rest');
});

test('weighted clusters are drawn in proportion to their weights', () => {
  const action: ForwardAction = {
    kind: 'forward',
    clusters: [
      { name: 'a', weight: 90 },
      { name: 'b', weight: 10 },
    ],
    totalWeight: 100,
    mirrors: [],
  };
  const counts = { a: 0, b: 0 };
  for (let i = 0; i < 10_000; i++) counts[pickWeightedCluster(action) as 'a' | 'b']++;
  assert.ok(Math.abs(counts.a / 10_000 - 0.9) < 0.02, JSON.stringify(counts));
  assert.equal(
    pickWeightedCluster(action, () => 0.95),
    'b',
  );
  assert.equal(
    pickWeightedCluster(action, () => 0),
    'a',
  );
});
