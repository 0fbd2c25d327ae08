// Unit: header field names and values as both HTTP/1.1 parsers read them off a head.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fieldName, owsSlice } from '../../../../src/sidecar/proxy/field-names.js';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** What fieldName must return: the slow way, for every name. */
function reference(s: string, start: number, end: number): string | undefined {
  const name = s.slice(start, end);
  return TOKEN.test(name) ? name.toLowerCase() : undefined;
}

/** The name of the first field line of `line`, as the parsers call it. */
function nameOf(line: string, offset = 0): string | undefined {
  const s = 'x'.repeat(offset) + line;
  return fieldName(s, offset, s.indexOf(':', offset));
}

test('common names in either usual case come back lower-case', () => {
  const cases: Array<[string, string]> = [
    ['Content-Length', 'content-length'],
    ['content-length', 'content-length'],
    ['ETag', 'etag'],
    ['etag', 'etag'],
    ['TE', 'te'],
    ['X-Request-Id', 'x-request-id'],
    ['x-forwarded-for', 'x-forwarded-for'],
    ['User-Agent', 'user-agent'],
    ['Host', 'host'],
  ];
  for (const [raw, want] of cases) {
    assert.equal(nameOf(`${raw}: v`), want, raw);
    // Matched where the line starts, not only at the start of the string.
    assert.equal(nameOf(`${raw}: v`, 7), want, `${raw} at offset 7`);
  }
});

test('other spellings and other names are lower-cased the long way', () => {
  assert.equal(nameOf('CONTENT-LENGTH: 3'), 'content-length');
  assert.equal(nameOf('Etag: "x"'), 'etag');
  assert.equal(nameOf('X-Custom-Thing: 1'), 'x-custom-thing');
  assert.equal(nameOf("x!#$%&'*+-.^_`|~9: 1"), "x!#$%&'*+-.^_`|~9");
});

test('a name of a common length that is not a common name is not mistaken for one', () => {
  // Same length as `date`, `host` and `etag`; same length and prefix as `content-type`.
  assert.equal(nameOf('Datx: 1'), 'datx');
  assert.equal(nameOf('content-typf: 1'), 'content-typf');
  // A common name followed by more name: the colon decides where the name ends.
  assert.equal(nameOf('Host-Name: a'), 'host-name');
});

test('a name that is not a token is refused', () => {
  assert.equal(nameOf('Bad Name: 1'), undefined);
  assert.equal(nameOf('Host : a'), undefined);
  assert.equal(nameOf('ho\u00e9st: a'), undefined);
  assert.equal(nameOf(': empty'), undefined);
});

test('owsSlice takes SP and HTAB off both ends and nothing else', () => {
  assert.equal(owsSlice('a: \t v v \t', 2, 10), 'v v');
  assert.equal(owsSlice('   ', 0, 3), '');
  assert.equal(owsSlice('\u00a0v\u00a0', 0, 3), '\u00a0v\u00a0');
});

test('any name, at any place in a line, reads as the slow way reads it (property)', () => {
  // Names near the table's (a common name in a random case, cut short or run on) and any other
  // run of token and non-token characters, between random text.
  const common = fc
    .constantFrom('content-length', 'content-type', 'etag', 'te', 'host', 'x-request-id', 'date', 'age')
    .chain((n) =>
      fc
        .tuple(fc.array(fc.boolean(), { minLength: n.length, maxLength: n.length }), fc.nat(3), fc.string())
        .map(
          ([upper, cut, more]) =>
            [...n]
              .map((c, i) => (upper[i] ? c.toUpperCase() : c))
              .join('')
              .slice(0, n.length - (cut === 0 ? 1 : 0)) + (cut === 1 ? more : ''),
        ),
    );
  const other = fc.string({ unit: fc.constantFrom(...'aZ-_!~ \t\u00e9:0'.split('')), maxLength: 20 });
  fc.assert(
    fc.property(fc.string(), fc.oneof(common, other), fc.string(), (before, name, after) => {
      const s = before + name + after;
      const end = before.length + name.length;
      assert.equal(fieldName(s, before.length, end), reference(s, before.length, end));
    }),
    { numRuns: 5000 },
  );
});
