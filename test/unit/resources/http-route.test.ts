import assert from 'node:assert/strict';
import { test } from 'node:test';
import { re2Problem } from '../../../src/resources/regex.js';
import { assertErrors, assertValid, httpRouteDoc, withField } from './fixtures.js';

test('a valid HTTPRoute gets Gateway API defaults', () => {
  const { resource } = assertValid(httpRouteDoc());
  assert.equal(resource.kind, 'HTTPRoute');
  if (resource.kind !== 'HTTPRoute') return;
  const [canary, split] = resource.spec.rules;
  assert.deepEqual(canary?.matches, [
    {
      path: { type: 'PathPrefix', value: '/' },
      headers: [{ type: 'Exact', name: 'x-canary', value: 'true' }],
    },
  ]);
  assert.deepEqual(split?.matches, [{ path: { type: 'PathPrefix', value: '/' } }]);
  assert.deepEqual(canary?.backendRefs, [
    { group: '', kind: 'Service', name: 'echo-v2', port: 80, weight: 1 },
  ]);
});

test('HTTPRoute without rules gets one rule matching everything', () => {
  const { resource } = assertValid(withField(httpRouteDoc(), 'spec.rules', undefined));
  assert.deepEqual(resource.spec, {
    parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 80 }],
    rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/' } }] }],
  });
});

test('HTTPRoute v1beta1 is accepted and converted to v1 with a warning', () => {
  const { resource, warnings } = assertValid(
    withField(httpRouteDoc(), 'apiVersion', 'gateway.networking.k8s.io/v1beta1'),
  );
  assert.equal(resource.apiVersion, 'gateway.networking.k8s.io/v1');
  assert.match(warnings[0] ?? '', /converted to gateway\.networking\.k8s\.io\/v1/);
});

test('HTTPRoute parentRefs: only Services; Gateway is "not supported yet"', () => {
  const doc = withField(httpRouteDoc(), 'spec.parentRefs', [
    { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' },
    { kind: 'Service', group: 'core', name: 'echo' },
    { name: 'echo', sectionName: 'http' },
    { name: 'echo', port: 80 },
    { name: 'echo', port: 80 },
  ]);
  assertErrors(doc, [
    ['spec.parentRefs[0].kind', 'parent kind Gateway is not supported yet'],
    ['spec.parentRefs[1].group', 'must be "" (the core API group) for kind Service, got "core"'],
    ['spec.parentRefs[2].sectionName', 'not supported for Service parents; use port'],
  ]);
  assertErrors(
    withField(httpRouteDoc(), 'spec.parentRefs', [
      { name: 'echo', port: 80 },
      { name: 'echo', port: 80 },
    ]),
    [['spec.parentRefs[1]', 'duplicate of parentRefs[0]']],
  );
  assertErrors(withField(httpRouteDoc(), 'spec.parentRefs', []), [
    ['spec.parentRefs', 'must have at least 1 item'],
  ]);
});

test('HTTPRoute backendRefs: weight bounds, typo in a field name, non-Service kinds', () => {
  const doc = withField(httpRouteDoc(), 'spec.rules[1].backendRefs', [
    { name: 'echo-v1', weight: -1 },
    { name: 'echo-v2', weigth: 5 },
    { name: 'echo-v3', weight: 1_000_001 },
    { name: 'bucket', kind: 'Bucket', group: 'storage.example.com' },
  ]);
  assertErrors(doc, [
    ['spec.rules[1].backendRefs[0].weight', 'must be an integer ≥ 0 and ≤ 1000000, got -1'],
    [
      'spec.rules[1].backendRefs[1].weigth',
      'unknown field "weigth"; allowed: group, kind, name, namespace, port, weight',
    ],
    ['spec.rules[1].backendRefs[2].weight', 'got 1000001'],
    ['spec.rules[1].backendRefs[3].kind', 'backend kind "Bucket" is not supported'],
  ]);
});

test('HTTPRoute path matches follow the Gateway API rules', () => {
  const paths = [
    { type: 'Exact', value: 'api' },
    { type: 'PathPrefix', value: '/a//b' },
    { type: 'PathPrefix', value: '/a/..' },
    { type: 'PathPrefix', value: '/a%2Fb' },
    { type: 'Exact', value: '/a b' },
    { type: 'Prefix', value: '/' },
    { type: 'RegularExpression', value: '^/v[0-9]+/(?!internal)' },
    { type: 'RegularExpression', value: '/(a' },
    { type: 'RegularExpression', value: '^/users/[0-9]+$' },
  ].map((path) => ({ path }));
  const doc = withField(httpRouteDoc(), 'spec.rules[0].matches', paths);
  assertErrors(doc, [
    [
      'spec.rules[0].matches[0].path.value',
      'must be an absolute path starting with "/" when type is Exact, got "api"',
    ],
    ['spec.rules[0].matches[1].path.value', 'must not contain "//"'],
    ['spec.rules[0].matches[2].path.value', 'must not end with "/.."'],
    ['spec.rules[0].matches[3].path.value', 'must not contain "%2F"'],
    ['spec.rules[0].matches[4].path.value', 'must contain only URL path characters'],
    [
      'spec.rules[0].matches[5].path.type',
      'must be one of Exact, PathPrefix, RegularExpression, got "Prefix"',
    ],
    ['spec.rules[0].matches[6].path.value', 'uses a negative lookahead "(?!…)", which RE2 does not support'],
    ['spec.rules[0].matches[7].path.value', 'regular expression is not a valid regular expression'],
  ]);
});

test('HTTPRoute header and query matches: names, duplicates, regexes, counts', () => {
  const doc = withField(httpRouteDoc(), 'spec.rules[0].matches', [
    {
      headers: [
        { name: 'X-Env', value: 'prod' },
        { name: 'x-env', value: 'dev' },
        { name: 'bad header', value: 'x' },
        { name: 'x-user', type: 'RegularExpression', value: '(a)\\1' },
      ],
      queryParams: [
        { name: 'debug', value: '1' },
        { name: 'debug', value: '2' },
      ],
      method: 'FETCH',
    },
  ]);
  assertErrors(doc, [
    ['spec.rules[0].matches[0].headers[2].name', 'must be a valid HTTP header name'],
    ['spec.rules[0].matches[0].headers[3].value', 'uses a backreference "\\1"'],
    ['spec.rules[0].matches[0].queryParams[1].name', 'duplicate query parameter "debug" (also at [0])'],
    [
      'spec.rules[0].matches[0].method',
      'must be one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH',
    ],
  ]);
  const duplicateHeaders = withField(httpRouteDoc(), 'spec.rules[0].matches', [
    {
      headers: [
        { name: 'X-Env', value: 'prod' },
        { name: 'x-env', value: 'dev' },
      ],
    },
  ]);
  assertErrors(duplicateHeaders, [
    ['spec.rules[0].matches[0].headers[1].name', 'duplicate header "x-env" (also at [0])'],
  ]);
  const manyHeaders = Array.from({ length: 17 }, (_, i) => ({ name: `x-h${i}`, value: 'v' }));
  assertErrors(withField(httpRouteDoc(), 'spec.rules[0].matches', [{ headers: manyHeaders }]), [
    ['spec.rules[0].matches[0].headers', 'must have at most 16 items, got 17'],
  ]);
});

test('HTTPRoute limits: 16 rules, 64 matches per rule, unique rule names', () => {
  const rules = Array.from({ length: 17 }, () => ({ backendRefs: [{ name: 'echo' }] }));
  assertErrors(withField(httpRouteDoc(), 'spec.rules', rules), [
    ['spec.rules', 'must have at most 16 items, got 17'],
  ]);
  const matches = Array.from({ length: 65 }, () => ({ path: { value: '/' } }));
  assertErrors(withField(httpRouteDoc(), 'spec.rules[0].matches', matches), [
    ['spec.rules[0].matches', 'must have at most 64 items, got 65'],
  ]);
  assertErrors(withField(httpRouteDoc(), 'spec.rules', [{ name: 'a' }, { name: 'a' }]), [
    ['spec.rules[1].name', 'duplicate rule name "a" (also at [0])'],
  ]);
});

test('HTTPRoute filters: supported types with their own fields', () => {
  const filters = [
    {
      type: 'RequestHeaderModifier',
      requestHeaderModifier: { set: [{ name: 'x-a', value: '1' }], remove: ['x-b'] },
    },
    { type: 'ResponseHeaderModifier', responseHeaderModifier: { add: [{ name: 'x-c', value: '2' }] } },
    { type: 'RequestMirror', requestMirror: { backendRef: { name: 'echo-shadow', port: 80 }, percent: 10 } },
    {
      type: 'URLRewrite',
      urlRewrite: {
        hostname: 'echo.internal',
        path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/v2' },
      },
    },
  ];
  const doc = withField(httpRouteDoc(), 'spec.rules[0]', {
    matches: [{ path: { type: 'PathPrefix', value: '/v1' } }],
    filters,
    backendRefs: [{ name: 'echo-v2', port: 80 }],
    timeouts: { request: '10s', backendRequest: '2s' },
  });
  const { resource } = assertValid(doc);
  assert.equal(resource.kind === 'HTTPRoute' && resource.spec.rules[0]?.filters?.length, 4);
});

test('HTTPRoute filters: wrong field for the type, repeats, unsupported types', () => {
  const doc = withField(httpRouteDoc(), 'spec.rules[0].filters', [
    { type: 'RequestHeaderModifier', responseHeaderModifier: {} },
    { type: 'ExtensionRef', extensionRef: { name: 'x' } },
    {
      type: 'RequestMirror',
      requestMirror: { backendRef: { name: 'shadow' }, percent: 10, fraction: { numerator: 1 } },
    },
    { type: 'RequestRedirect', requestRedirect: { statusCode: 307, scheme: 'ftp' } },
  ]);
  assertErrors(doc, [
    ['spec.rules[0].filters[0].requestHeaderModifier', 'required when type is RequestHeaderModifier'],
    ['spec.rules[0].filters[0].responseHeaderModifier', 'must not be set when type is RequestHeaderModifier'],
    [
      'spec.rules[0].filters[1].type',
      'must be one of RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, RequestRedirect, URLRewrite, got "ExtensionRef"',
    ],
    ['spec.rules[0].filters[1].extensionRef', 'unknown field "extensionRef"'],
    ['spec.rules[0].filters[2].requestMirror.fraction', 'only one of percent and fraction may be set'],
    ['spec.rules[0].filters[3].requestRedirect.scheme', 'must be one of http, https'],
    ['spec.rules[0].filters[3].requestRedirect.statusCode', 'got 307'],
  ]);
  const repeated = withField(httpRouteDoc(), 'spec.rules[0].filters', [
    { type: 'URLRewrite', urlRewrite: { hostname: 'a' } },
    { type: 'URLRewrite', urlRewrite: { hostname: 'b' } },
    { type: 'RequestRedirect', requestRedirect: { hostname: 'c' } },
  ]);
  assertErrors(repeated, [
    ['spec.rules[0].filters[1].type', 'URLRewrite may appear only once per rule (also at [0])'],
    ['spec.rules[0].filters[2].type', 'either RequestRedirect or URLRewrite, not both'],
  ]);
});

test('HTTPRoute ReplacePrefixMatch needs exactly one PathPrefix match', () => {
  const doc = withField(httpRouteDoc(), 'spec.rules[0]', {
    matches: [{ path: { type: 'Exact', value: '/v1' } }],
    filters: [
      { type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replaceFullPath: '/x' } } },
    ],
  });
  assertErrors(doc, [
    [
      'spec.rules[0].filters[0].urlRewrite.path.replacePrefixMatch',
      'required when type is ReplacePrefixMatch',
    ],
    [
      'spec.rules[0].filters[0].urlRewrite.path.replaceFullPath',
      'must not be set when type is ReplacePrefixMatch',
    ],
  ]);
  const fixed = withField(doc, 'spec.rules[0].filters[0].urlRewrite.path', {
    type: 'ReplacePrefixMatch',
    replacePrefixMatch: '/',
  });
  assertErrors(fixed, [['spec.rules[0].filters[0]', 'needs exactly one match, of type PathPrefix']]);
});

test('HTTPRoute timeouts are Gateway API durations; backendRequest ≤ request', () => {
  assertErrors(
    withField(httpRouteDoc(), 'spec.rules[0].timeouts', { request: '1.5s', backendRequest: '10' }),
    [
      ['spec.rules[0].timeouts.request', 'must be a Gateway API duration'],
      ['spec.rules[0].timeouts.backendRequest', 'got "10"'],
    ],
  );
  assertErrors(withField(httpRouteDoc(), 'spec.rules[0].timeouts', { request: '1s', backendRequest: '1m' }), [
    ['spec.rules[0].timeouts.backendRequest', 'must not be longer than timeouts.request (1s)'],
  ]);
  assertValid(
    withField(httpRouteDoc(), 'spec.rules[0].timeouts', { request: '0s', backendRequest: '1h30m' }),
  );
});

test('HTTPRoute hostnames are accepted with a warning', () => {
  const { warnings } = assertValid(
    withField(httpRouteDoc(), 'spec.hostnames', ['echo.example.com', '*.example.com']),
  );
  assert.match(warnings.join('\n'), /hostnames is ignored/);
  assertErrors(withField(httpRouteDoc(), 'spec.hostnames', ['Echo.example.com']), [
    ['spec.hostnames[0]', 'lowercase DNS hostname'],
  ]);
});

test('re2Problem names the construct RE2 lacks and ignores look-alikes', () => {
  assert.equal(re2Problem('(?<=a)b'), 'uses a lookbehind "(?<=…)", which RE2 does not support');
  assert.equal(re2Problem('(?<!a)b'), 'uses a negative lookbehind "(?<!…)", which RE2 does not support');
  assert.equal(re2Problem('a(?=b)'), 'uses a lookahead "(?=…)", which RE2 does not support');
  assert.equal(
    re2Problem('(?<n>a)\\k<n>'),
    'uses a named backreference "\\k<…>", which RE2 does not support',
  );
  assert.equal(re2Problem('[(?=]\\(?=x'), undefined);
  assert.equal(re2Problem('[\\1]'), undefined);
  assert.equal(re2Problem('^/api/(v1|v2)/.*$'), undefined);
  assert.match(re2Problem('[') ?? '', /not a valid regular expression/);
});
