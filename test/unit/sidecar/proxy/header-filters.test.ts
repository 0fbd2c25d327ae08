// Unit: hop-by-hop stripping (RFC 9110 §7.6.1), forwarding headers, request ids, route header
// mutations, rewrites and redirect targets; and the codec sniffing of the first bytes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  appendForwardedFor,
  applyHeaderMutations,
  ensureRequestId,
  redirectLocation,
  rewritePath,
  stripHopByHop,
} from '../../../../src/sidecar/proxy/header-filters.js';
import { classifyPreface, H2_PREFACE } from '../../../../src/sidecar/proxy/codec-detect.js';
import { authorityProblem, parseRequestTarget } from '../../../../src/sidecar/proxy/downstream.js';
import type { HeaderMap } from '../../../../src/sidecar/proxy/header-map.js';
import type { ForwardAction, RouteMatch } from '../../../../src/sidecar/runtime-config.js';

const base = (): HeaderMap => ({
  connection: ['keep-alive, X-Secret', 'upgrade'],
  'keep-alive': ['timeout=5'],
  'proxy-connection': ['keep-alive'],
  'transfer-encoding': ['chunked'],
  te: ['trailers, deflate'],
  upgrade: ['websocket'],
  'x-secret': ['s'],
  'proxy-authorization': ['Basic x'],
  'content-type': ['text/plain'],
});

test('strips Connection, the fields it names, and the fixed hop-by-hop set', () => {
  const h = base();
  stripHopByHop(h, { keepTeTrailers: false, keepUpgrade: false });
  assert.deepEqual(Object.keys(h).sort(), ['content-type', 'proxy-authorization']);
});

test('keeps te: trailers (gRPC) and an Upgrade being tunnelled when asked', () => {
  const h = base();
  stripHopByHop(h, { keepTeTrailers: true, keepUpgrade: true });
  assert.deepEqual(h['te'], ['trailers']);
  assert.deepEqual(h['upgrade'], ['websocket']);
  assert.deepEqual(h['connection'], ['upgrade']);
  assert.equal(h['x-secret'], undefined);
  const noTrailers: HeaderMap = { te: ['gzip'] };
  stripHopByHop(noTrailers, { keepTeTrailers: true, keepUpgrade: false });
  assert.equal(noTrailers['te'], undefined);
});

test('x-forwarded-for appends; x-request-id is kept or created', () => {
  const h: HeaderMap = { 'x-forwarded-for': ['1.1.1.1', '2.2.2.2'] };
  appendForwardedFor(h, '10.0.0.1');
  assert.deepEqual(h['x-forwarded-for'], ['1.1.1.1, 2.2.2.2, 10.0.0.1']);
  assert.equal(ensureRequestId({ 'x-request-id': ['abc'] }), 'abc');
  const fresh: HeaderMap = {};
  const id = ensureRequestId(fresh);
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual(fresh['x-request-id'], [id]);
});

test('route header mutations: remove, then append / overwrite / addIfAbsent', () => {
  const h: HeaderMap = { a: ['1'], b: ['2'], c: ['3'], gone: ['x'] };
  applyHeaderMutations(
    h,
    [
      { name: 'A', value: 'more', action: 'append' },
      { name: 'b', value: 'new', action: 'overwrite' },
      { name: 'c', value: 'ignored', action: 'addIfAbsent' },
      { name: 'd', value: 'added', action: 'addIfAbsent' },
    ],
    ['Gone'],
  );
  assert.deepEqual(h, { a: ['1', 'more'], b: ['new'], c: ['3'], d: ['added'] });
});

test('prefix and regex rewrites keep the query', () => {
  const prefix: RouteMatch = { path: { prefix: '/api' }, caseSensitive: true, headers: [], query: [] };
  const fwd = (extra: Partial<ForwardAction>): ForwardAction => ({
    kind: 'forward',
    clusters: [],
    totalWeight: 1,
    mirrors: [],
    ...extra,
  });
  assert.equal(rewritePath('/api/users?x=1', prefix, fwd({ prefixRewrite: '/v2' })), '/v2/users?x=1');
  assert.equal(rewritePath('/api/users', prefix, fwd({ prefixRewrite: '/' })), '/users');
  assert.equal(rewritePath('/api', prefix, fwd({ prefixRewrite: '' })), '/');
  assert.equal(
    rewritePath(
      '/items/42?y',
      prefix,
      fwd({ regexRewrite: { pattern: /^\/items\/(\d+)$/, substitution: '/item/$1' } }),
    ),
    '/item/42?y',
  );
});

test('redirect targets take unset parts from the request', () => {
  const m: RouteMatch = { path: { prefix: '/old' }, caseSensitive: true, headers: [], query: [] };
  const req = { scheme: 'http', authority: 'svc:8080', path: '/old/x?q=1' };
  assert.equal(
    redirectLocation({ kind: 'redirect', status: 301, prefixRewrite: '/new' }, req, m),
    'http://svc:8080/new/x?q=1',
  );
  assert.equal(
    redirectLocation({ kind: 'redirect', status: 302, scheme: 'https' }, req, m),
    'https://svc/old/x?q=1',
  );
  assert.equal(
    redirectLocation({ kind: 'redirect', status: 308, host: 'b', port: 9 }, req, m),
    'http://b:9/old/x?q=1',
  );
});

test('redirect targets keep an IPv6 host and drop a default port, without parsing a URL', () => {
  const m: RouteMatch = { path: { prefix: '/' }, caseSensitive: true, headers: [], query: [] };
  const v6 = { scheme: 'http', authority: '[::1]:8080', path: '/a' };
  assert.equal(redirectLocation({ kind: 'redirect', status: 301, path: '/b' }, v6, m), 'http://[::1]:8080/b');
  const dflt = { scheme: 'http', authority: 'svc:80', path: '/a' };
  assert.equal(redirectLocation({ kind: 'redirect', status: 301 }, dflt, m), 'http://svc/a');
});

test('authorities are checked once, where the request head is parsed', () => {
  for (const ok of [
    'svc',
    'svc:8080',
    'svc.ns.svc.cluster.local',
    '10.0.0.1:80',
    '[::1]',
    '[fe80::1]:443',
    'svc:',
  ])
    assert.equal(authorityProblem(ok), undefined, ok);
  for (const bad of ['', 'svc:abc', '[svc', 'a b', 'u@svc', 'svc:70000', 'svc/x', 'svc:1:2'])
    assert.notEqual(authorityProblem(bad), undefined, bad);
  assert.equal(parseRequestTarget('/', undefined, '1.1').invalid, 'an HTTP/1.1 request needs a Host header');
  assert.equal(parseRequestTarget('/', undefined, '1.0').invalid, undefined);
  assert.equal(parseRequestTarget('/', ['a', 'a'], '1.1').invalid, 'more than one Host header');
  assert.deepEqual(parseRequestTarget('http://svc:81/p?q', undefined, '1.1'), {
    authority: 'svc:81',
    path: '/p?q',
    scheme: 'http',
  });
});

test('codec detection: the h2c preface, decided on as few bytes as possible', () => {
  assert.equal(classifyPreface(H2_PREFACE), 'http2');
  assert.equal(classifyPreface(Buffer.concat([H2_PREFACE, Buffer.from([0, 0])])), 'http2');
  assert.equal(classifyPreface(H2_PREFACE.subarray(0, 10)), undefined);
  assert.equal(classifyPreface(Buffer.from('PRI * HTTP/1.1')), 'http1');
  assert.equal(classifyPreface(Buffer.from('G')), 'http1');
  assert.equal(classifyPreface(Buffer.from('POST / HTTP/1.1\r\n')), 'http1');
});
