// Fuzz test of path normalization, which reads request targets straight from clients. Whatever
// the target (built from the characters a request line may carry, weighted towards the ones
// normalization acts on) and whatever the options: no exception; a string, a refusal or a
// redirect; the fast path answers as the full one; the query comes back as sent; the result is
// normalized already (normalizing again changes nothing) and holds no dot segment, no backslash,
// no escape of an unreserved character, no lower-case escape, and with merge_slashes no `//`.
// Dot-segment removal is also checked against the WHATWG URL parser on paths where the two
// must agree. The seeds run every time as a regression suite.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { normalizePath, normalizeTarget } from '../../../../src/sidecar/proxy/path-normalize.js';
import type { PathNormalization } from '../../../../src/sidecar/runtime-config.js';

const OPTIONS: PathNormalization[] = [];
for (const normalize of [false, true])
  for (const mergeSlashes of [false, true])
    for (const escapedSlashes of ['keep', 'reject', 'unescapeAndForward', 'unescapeAndRedirect'] as const)
      OPTIONS.push({ normalize, mergeSlashes, escapedSlashes });

const SEEDS = [
  '/',
  '/admin',
  '/./admin',
  '//admin',
  '/x/../admin',
  '/%61dmin',
  '/%2e/admin',
  '/admin/.',
  '/\\admin',
  '/..;x/admin',
  '/%2e%2e;x/%2E./',
  '/a%2F..%2F..%5C..%5cb',
  '/a%252F%25%32%46',
  '/a%zz',
  '/a%',
  '/%00',
  '/a#b',
  '/a?b/../c#d',
  '/a?/../%zz',
  '/\xff\x80/\x7f',
  '*',
  '/////',
  '/..//..//',
  '/.%2e/.%2E%2e/..%2e',
];

// The request-target alphabet (visible ASCII and obs-text), with the characters normalization
// acts on drawn far more often than their share.
const ANY = fc.integer({ min: 0x21, max: 0xff }).map((c) => String.fromCharCode(c === 0x7f ? 0x7e : c));
const SPECIAL = fc.constantFrom(
  '/',
  '/',
  '/',
  '.',
  '.',
  '%',
  '%2e',
  '%2E',
  '%2f',
  '%5C',
  '%61',
  '%00',
  '\\',
  ';',
  '?',
  '#',
  '..',
  'a',
);
const target = fc
  .array(fc.oneof({ arbitrary: SPECIAL, weight: 3 }, { arbitrary: ANY, weight: 2 }), { maxLength: 40 })
  .map((parts) => `/${parts.join('')}`);

/** Everything a normalized target must be, for `input` normalized with `how` into `out`. */
function checkNormalized(input: string, out: string, how: PathNormalization): void {
  const q = input.indexOf('?');
  const qo = out.indexOf('?');
  assert.equal(qo < 0 ? '' : out.slice(qo), q < 0 ? '' : input.slice(q), 'the query is kept as sent');
  const path = qo < 0 ? out : out.slice(0, qo);
  if (how.normalize) {
    assert.ok(path.startsWith('/'), 'starts with /');
    const segments = path.split('/');
    for (const s of segments) assert.ok(!/^\.\.?(;|$)/.test(s), `dot segment ${JSON.stringify(s)} left`);
    assert.ok(!path.includes('\\'), 'no backslash');
    assert.ok(!/%(?![0-9A-F]{2})/.test(path), 'every escape is %XX, upper-case');
    assert.ok(
      !/%(?:[46][1-9A-F]|[57][0-9A]|3[0-9]|2[DE]|5F|7E)/.test(path),
      'no escaped unreserved character',
    );
    const unfit = [...path].find((ch) => ch <= ' ' || ch >= '\x7f' || '"<>^`{|}'.includes(ch));
    assert.equal(unfit, undefined, 'no character a URI cannot hold');
  }
  if (how.mergeSlashes) assert.ok(!path.includes('//'), 'no //');
  if (how.escapedSlashes !== 'keep') assert.ok(!/%(?:2f|5c)/i.test(path), 'no escaped slash left');
  // Normalized already: a second pass gives the same target, and never a refusal or redirect.
  assert.equal(normalizePath(out, how), out, 'idempotent');
}

function property(input: string): void {
  for (const how of OPTIONS) {
    const verdict = normalizePath(input, how);
    assert.deepEqual(normalizeTarget(input, how), verdict, 'the fast path answers as the full one');
    if (typeof verdict === 'string') checkNormalized(input, verdict, how);
    else if ('redirect' in verdict) {
      assert.equal(how.escapedSlashes, 'unescapeAndRedirect');
      checkNormalized(input, verdict.redirect, how);
    } else {
      assert.equal(typeof verdict.reject, 'string');
      assert.ok(verdict.reject.length > 0);
    }
  }
}

for (const seed of SEEDS) {
  test(`seed: ${JSON.stringify(seed)}`, () => {
    if (seed === '*') return assert.equal(normalizePath(seed, OPTIONS.at(-1)), '*');
    property(seed);
  });
}

test('fuzz: any target, any options', () => {
  fc.assert(fc.property(target, property), { numRuns: 3000 });
});

test('fuzz: any string at all (not only what a codec lets through) never throws', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (s) => {
      for (const how of [undefined, ...OPTIONS]) normalizePath(s, how);
    }),
    { numRuns: 2000 },
  );
});

test('fuzz: dot segments are removed as the WHATWG URL parser removes them', () => {
  const BASE: PathNormalization = { normalize: true, mergeSlashes: false, escapedSlashes: 'keep' };
  const path = fc
    .array(fc.constantFrom('/', '/', '.', '.', 'a', 'b', '\\'), { maxLength: 24 })
    .map((parts) => `/${parts.join('')}`)
    // Node 20's URL parser keeps the `.` of `/a/.b/.` (the WHATWG spec gives `/a/.b/`): paths
    // with a segment that starts with dots and goes on are left out of the comparison.
    .filter((p) => !/(?:^|[/\\])\.+[ab]/.test(p));
  fc.assert(
    fc.property(path, (p) => {
      assert.equal(normalizePath(p, BASE), new URL(`http://h${p}`).pathname, p);
    }),
    { numRuns: 3000 },
  );
});
