// SPIFFE ID parsing by the SPIFFE-ID spec's rules, and the workload ID shape Weft issues.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSpiffeId, workloadSpiffeId } from '../../../src/ca/index.js';

test('workload IDs are spiffe://<trust-domain>/ns/<namespace>/sa/<serviceAccount>', () => {
  const id = workloadSpiffeId('example.org', { namespace: 'default', serviceAccount: 'web.v2' });
  assert.equal(id, 'spiffe://example.org/ns/default/sa/web.v2');
  assert.deepEqual(parseSpiffeId(id), {
    ok: true,
    id: { trustDomain: 'example.org', path: '/ns/default/sa/web.v2' },
  });
  assert.deepEqual(parseSpiffeId('spiffe://example.org'), {
    ok: true,
    id: { trustDomain: 'example.org', path: '' },
  });
});

test('invalid SPIFFE IDs are refused with the reason', () => {
  const cases: [string, RegExp][] = [
    ['https://example.org/ns/a', /scheme/],
    ['SPIFFE://example.org/ns/a', /scheme/],
    ['spiffe://', /trust domain is empty/],
    ['spiffe:///ns/a', /trust domain is empty/],
    ['spiffe://Example.org/ns/a', /lowercase/],
    ['spiffe://example.org:8080/ns/a', /lowercase/],
    ['spiffe://user@example.org/ns/a', /lowercase/],
    ['spiffe://example.org/', /empty segment or a trailing/],
    ['spiffe://example.org/ns//a', /empty segment/],
    ['spiffe://example.org/ns/../a', /"\." or "\.\."/],
    ['spiffe://example.org/ns/a?x=1', /path segment "a\?x=1"/],
    ['spiffe://example.org/ns/a#f', /path segment/],
    ['spiffe://example.org/ns/%41', /path segment/],
    [`spiffe://example.org/${'a'.repeat(2040)}`, /longer than 2048 bytes/],
  ];
  for (const [uri, why] of cases) {
    const r = parseSpiffeId(uri);
    assert.equal(r.ok, false, uri);
    if (!r.ok) assert.match(r.problem, why, uri);
  }
});
