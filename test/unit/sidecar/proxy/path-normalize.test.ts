// Path normalization (Envoy's HCM normalize_path, merge_slashes, path_with_escaped_slashes_action):
// the spellings that walk around a DENY on /admin, RFC 3986 §5.2.4's examples, Envoy's own
// test cases (and where Weft is deliberately stricter), the query left alone, refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizePath, type PathVerdict } from '../../../../src/sidecar/proxy/path-normalize.js';
import type { PathNormalization } from '../../../../src/sidecar/runtime-config.js';

const BASE: PathNormalization = { normalize: true, mergeSlashes: false, escapedSlashes: 'keep' };
const MERGE: PathNormalization = { ...BASE, mergeSlashes: true };
const DECODE: PathNormalization = { ...MERGE, escapedSlashes: 'unescapeAndForward' };

function check(how: PathNormalization | undefined, cases: Array<[string, PathVerdict | RegExp]>): void {
  for (const [input, want] of cases) {
    const got = normalizePath(input, how);
    if (want instanceof RegExp) {
      assert.ok(
        typeof got === 'object' && 'reject' in got,
        `${input}: expected a refusal, got ${JSON.stringify(got)}`,
      );
      assert.match(got.reject, want, input);
    } else assert.deepEqual(got, want, input);
  }
}

test('every spelling of /admin becomes /admin (MERGE_SLASHES, the mesh default)', () => {
  check(MERGE, [
    ['/admin', '/admin'],
    ['/./admin', '/admin'],
    ['//admin', '/admin'],
    ['///admin', '/admin'],
    ['/x/../admin', '/admin'],
    ['/x/y/../../admin', '/admin'],
    ['/%61dmin', '/admin'],
    ['/%61%64%6D%69%6e', '/admin'],
    ['/%2e/admin', '/admin'],
    ['/%2E/admin', '/admin'],
    ['/x/%2e%2e/admin', '/admin'],
    ['/x/.%2E/admin', '/admin'],
    ['/\\admin', '/admin'],
    ['/x\\..\\admin', '/admin'],
    ['/public/..;/admin', '/admin'],
    ['/public/..;jsessionid=1/admin', '/admin'],
    ['/.;x/admin', '/admin'],
    ['/public/%2e%2e;x/admin', '/admin'],
    ['/../../admin', '/admin'],
  ]);
  // A dot segment at the end leaves a trailing slash, as RFC 3986 does: /admin/ is another path,
  // which a policy covers with `/admin/*` beside `/admin`.
  check(MERGE, [
    ['/admin/.', '/admin/'],
    ['/admin/x/..', '/admin/'],
  ]);
});

test('RFC 3986 §5.2.4 remove_dot_segments, and `..` above the root stays at the root', () => {
  check(BASE, [
    ['/a/b/c/./../../g', '/a/g'],
    // A relative path gets the leading slash Chromium's canonicalizer gives it.
    ['mid/content=5/../6', '/mid/6'],
    ['/a/b/../../../../c', '/c'],
    ['/..', '/'],
    ['/.', '/'],
    ['/', '/'],
    ['/a/..', '/'],
    ['/a/b/..', '/a/'],
    ['/a/./b/./', '/a/b/'],
    // Empty segments count as segments; only merge_slashes removes them.
    ['/a//..', '/a/'],
    ['/a//b', '/a//b'],
    // Not dot segments.
    ['/.well-known/x', '/.well-known/x'],
    ['/a/..b/.c/...', '/a/..b/.c/...'],
    ['/a.', '/a.'],
  ]);
});

test("Envoy's canonicalPath cases, and where Weft is stricter", () => {
  check(BASE, [
    ['/xyz', '/xyz'],
    ['/x/y/z', '/x/y/z'],
    ['/a/b/../c', '/a/c'],
    ['/a/b/./c', '/a/b/c'],
    ['a/b/../c', '/a/c'],
    ['/a/..\\c', '/c'],
    ['/a/b/%2E%2E/c', '/a/c'],
    ['/a/b/%2e%2e/c', '/a/c'],
    ['/A/B/C', '/A/B/C'],
    ['/xyz/..;foo=bar/abc', '/abc'],
    ['/xyz/..;foo=bar', '/'],
    ['/xyz/.;foo=bar', '/xyz/'],
    ['/xyz/..;foo=bar/.;v1=2,v2=3/abc', '/abc'],
    ['/xyz/..;foo=bar/.;fff=zzz/remain;blah-bluh?query', '/remain;blah-bluh?query'],
    ['/xyz/..foo', '/xyz/..foo'],
    // Envoy keeps the case of escapes it does not decode; Weft upper-cases them (RFC 3986
    // §6.2.2.1), so `%2f` and `%2F` are one spelling for the matchers.
    ['/%c0%af', '/%C0%AF'],
    ['/%5c%25', '/%5C%25'],
    ['/a/%2F%2f/c', '/a/%2F%2F/c'],
  ]);
  // Refused as Envoy refuses them: an encoded NUL.
  check(BASE, [
    ['/xyz/.%00../abc', /encoded NUL/],
    ['/xyz/%00.%00./abc', /encoded NUL/],
    ['/xyz/AAAAA%%0000/abc', /malformed percent-encoding "%%0"/],
  ]);
  // Envoy passes a malformed escape through (as browsers do); Weft refuses it.
  check(BASE, [
    ['/a%zz', /malformed percent-encoding "%zz"/],
    ['/a%4', /malformed percent-encoding "%4"/],
    ['/a%', /malformed percent-encoding "%"/],
    ['/%u0061dmin', /malformed percent-encoding "%u0"/],
  ]);
});

test('escapes: unreserved ones decoded, the rest upper-cased; characters a URI cannot hold escaped', () => {
  check(BASE, [
    ['/%41%5A%61%7A%30%39%2D%5F%7E', '/AZaz09-_~'],
    ['/%7euser', '/~user'],
    ['/a%3ab%40c%2b', '/a%3Ab%40c%2B'],
    ['/a%25%32%46', '/a%252F'],
    ['/a|b"c<d>e^f`g{h}', '/a%7Cb%22c%3Cd%3Ee%5Ef%60g%7Bh%7D'],
    ["/a!$&'()*+,;=:@[]b", "/a!$&'()*+,;=:@[]b"],
    ['/caf\xe9', '/caf%E9'],
    ['/a\x7fb', '/a%7Fb'],
  ]);
});

test('the query is never touched, nor checked, whatever the options', () => {
  for (const how of [BASE, MERGE, DECODE]) {
    check(how, [
      ['/x/../admin?next=/../y&z=%2F&w=%zz', '/admin?next=/../y&z=%2F&w=%zz'],
      ['/admin?', '/admin?'],
      ['/a//b?c//d', how.mergeSlashes ? '/a/b?c//d' : '/a//b?c//d'],
      ['/?%61', '/?%61'],
    ]);
  }
});

test('merge_slashes alone merges runs of slashes and nothing else', () => {
  const how: PathNormalization = { normalize: false, mergeSlashes: true, escapedSlashes: 'keep' };
  check(how, [
    ['//admin', '/admin'],
    ['/a///b//', '/a/b/'],
    // Envoy leaves a path of slashes only as `//`; Weft merges it like any other run.
    ['//', '/'],
    ['/./a//%2e', '/./a/%2e'],
  ]);
});

test('escaped slashes: kept, refused, decoded and forwarded, or decoded and redirected', () => {
  check(MERGE, [['/a%2fb%5Cc', '/a%2Fb%5Cc']]);
  check({ ...MERGE, escapedSlashes: 'reject' }, [
    ['/a%2Fb', /escaped slash .*REJECT_REQUEST/],
    ['/a%5cb', /escaped slash/],
    ['/ab?x=%2F', '/ab?x=%2F'],
  ]);
  check(DECODE, [
    ['/a%2Fb', '/a/b'],
    ['/public%2F..%2Fadmin', '/admin'],
    ['/public%5C..%5Cadmin', '/admin'],
    ['/a%2F%2Fb', '/a/b'],
    // One round of decoding: `%252F` is an escaped `%` followed by `2F`.
    ['/a%252Fb', '/a%252Fb'],
  ]);
  // Without normalize_path the decoded backslash stays a backslash, as in Envoy.
  check({ normalize: false, mergeSlashes: false, escapedSlashes: 'unescapeAndForward' }, [
    ['/a%5Cb%2f', '/a\\b/'],
  ]);
  check({ ...MERGE, escapedSlashes: 'unescapeAndRedirect' }, [
    ['/a%2Fb?x=1', { redirect: '/a/b?x=1' }],
    // `..` takes back the empty segment between the two decoded slashes, then they merge.
    ['/a%2F%2F..%2Fb', { redirect: '/a/b' }],
    ['/a/b?x=%2F', '/a/b?x=%2F'],
  ]);
});

test('a fragment is refused whatever the options; without them nothing else changes', () => {
  for (const how of [undefined, BASE, MERGE, DECODE]) {
    check(how, [
      ['/admin#x', /fragment/],
      ['/a?b#c', /fragment/],
      ['/#', /fragment/],
    ]);
  }
  check(undefined, [
    ['/./admin', '/./admin'],
    ['//admin', '//admin'],
    ['/%61dmin', '/%61dmin'],
    ['/a%zz', '/a%zz'],
  ]);
  // `OPTIONS *` names the server, not a path.
  check(MERGE, [['*', '*']]);
});

test('the fast path returns the very string it was given', () => {
  const target = '/api/v1/users/42?page=2&sort=-name';
  assert.equal(normalizePath(target, DECODE), target);
});
