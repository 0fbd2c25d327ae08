// Fuzz test of the parser that reads client bytes straight off the network: the downstream
// HTTP/1.1 request parser. Whatever a client sends, in whatever pieces, the parser reports
// requests or refuses with an H1RequestError (400/431/501) — never another exception, never a
// body longer than its framing, and never a different reading of the same bytes when they
// arrive split differently (the property request smuggling lives on). The seed corpus runs
// every time as a regression suite.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parse, type Parsed } from './downstream-h1-feed.js';

/** Name, bytes, and the verdict they must get. */
const SEEDS: Array<[string, string, 'read' | 'refused']> = [
  ['empty', '', 'read'],
  ['a GET', 'GET / HTTP/1.1\r\nHost: svc\r\n\r\n', 'read'],
  [
    'CL.TE',
    'POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG',
    'refused',
  ],
  [
    'TE.CL',
    'POST / HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n',
    'refused',
  ],
  [
    'TE with obs-fold',
    'POST / HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n',
    'refused',
  ],
  [
    'TE with a space before the colon',
    'POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
    'refused',
  ],
  ['TE: xchunked', 'POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n', 'refused'],
  ['TE with a vertical tab', 'POST / HTTP/1.1\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n', 'refused'],
  [
    'a chunk extension that never ends',
    `POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;${'a'.repeat(5000)}`,
    'refused',
  ],
  [
    'a chunk size with an LF only',
    'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\nxx\r\n0\r\n\r\n',
    'refused',
  ],
  [
    'a zero-size chunk with trailers',
    'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: b\r\n\r\n',
    'read',
  ],
  ['pipelined with leading CRLFs', '\r\n\r\nGET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.0\r\n\r\n', 'read'],
  [
    'an Upgrade with bytes after it',
    'GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: ws\r\n\r\n\x00\xff',
    'read',
  ],
  ['only CRs', '\r\r\r\r\r\r', 'read'],
  ['only LFs', '\n\n\n\n', 'refused'],
  ['a NUL in the target', 'GET /\x00 HTTP/1.1\r\n\r\n', 'refused'],
  ['a head that never ends', `GET / HTTP/1.1\r\nX: ${'y'.repeat(9000)}`, 'refused'],
];

/** The invariants whatever the input: errors are ours, bodies stay within their framing. */
function checkShape(r: Parsed): void {
  assert.ok(r.bodies.length <= r.heads.length);
  for (let i = 0; i < r.bodies.length; i++) {
    const h = r.heads[i]!;
    const body = r.bodies[i]!;
    if (h.framing === 'none') assert.equal(body, '');
    if (h.framing === 'length') assert.equal(body.length, h.contentLength);
    if (h.framing !== 'chunked') assert.equal(r.trailers[i], undefined);
    assert.ok(!(h.headers['content-length'] && h.headers['transfer-encoding']), 'CL and TE both accepted');
    for (const name of Object.keys(h.headers)) assert.match(name, /^[!#$%&'*+\-.^_`|~0-9a-z]+$/);
  }
  if (r.error) assert.ok([400, 431, 501].includes(r.error.status));
}

/** The same reading whatever the pieces: heads, bodies, trailers, error or not. */
function sameReading(a: Parsed, b: Parsed): void {
  assert.deepEqual(
    b.heads.map((h) => [h.method, h.target, h.framing, h.contentLength, { ...h.headers }]),
    a.heads.map((h) => [h.method, h.target, h.framing, h.contentLength, { ...h.headers }]),
  );
  assert.deepEqual(b.bodies, a.bodies);
  assert.deepEqual(
    b.trailers.map((t) => (t ? { ...t } : t)),
    a.trailers.map((t) => (t ? { ...t } : t)),
  );
  // Refused either way (the status may differ: a bare LF seen in a partial head is a 400 before
  // the head grows past the limit, which read whole is a 431).
  assert.equal(b.error !== undefined, a.error !== undefined, `${a.error?.message} / ${b.error?.message}`);
  if (!a.error) assert.equal(b.rest, a.rest);
}

function split(text: string, cuts: number[]): string[] {
  const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((x, y) => x - y);
  const out: string[] = [];
  let prev = 0;
  for (const c of at) {
    out.push(text.slice(prev, c));
    prev = c;
  }
  out.push(text.slice(prev));
  return out;
}

for (const [name, text, verdict] of SEEDS) {
  test(`seed: ${name} (${verdict})`, () => {
    const whole = parse([text], 8192);
    checkShape(whole);
    assert.equal(whole.error !== undefined, verdict === 'refused', whole.error?.message ?? 'read');
    sameReading(whole, parse(text.split(''), 8192));
  });
}

const tchar = fc.constantFrom(
  ..."!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".split(''),
);
const token = fc.string({ unit: tchar, minLength: 1, maxLength: 12 });
const valueChar = fc.oneof(
  fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c)),
  fc.constant('\t'),
);
const fieldValue = fc
  .string({ unit: valueChar, maxLength: 24 })
  .map((v) => v.replace(/^[ \t]+|[ \t]+$/g, ''));
const field = fc
  .tuple(token, fieldValue)
  .filter(
    ([n]) => !['content-length', 'transfer-encoding', 'connection', 'upgrade'].includes(n.toLowerCase()),
  );
const body = fc.string({ unit: 'binary-ascii', maxLength: 64 });

/** A valid request: random method, target, fields, and a body in either framing. */
const request = fc
  .record({
    method: token,
    path: fc.webPath().map((p) => `/${p.replace(/^\/+/, '')}`),
    fields: fc.array(field, { maxLength: 6 }),
    body,
    chunked: fc.boolean(),
    chunkSize: fc.integer({ min: 1, max: 16 }),
    trailers: fc.array(field, { maxLength: 3 }),
  })
  .map((r) => {
    let text = `${r.method} ${r.path} HTTP/1.1\r\n`;
    for (const [n, v] of r.fields) text += `${n}: ${v}\r\n`;
    if (!r.chunked) return { r, text: `${text}Content-Length: ${r.body.length}\r\n\r\n${r.body}` };
    text += 'Transfer-Encoding: chunked\r\n\r\n';
    for (let i = 0; i < r.body.length; i += r.chunkSize) {
      const piece = r.body.slice(i, i + r.chunkSize);
      text += `${piece.length.toString(16)}\r\n${piece}\r\n`;
    }
    text += '0\r\n';
    for (const [n, v] of r.trailers) text += `${n}: ${v}\r\n`;
    return { r, text: `${text}\r\n` };
  });

test('fuzz: valid requests are read as sent, however they are split', () => {
  fc.assert(
    fc.property(
      fc.array(request, { minLength: 1, maxLength: 3 }),
      fc.array(fc.nat(), { maxLength: 8 }),
      (reqs, cuts) => {
        const text = reqs.map((x) => x.text).join('');
        const whole = parse([text], 1 << 16);
        assert.equal(whole.error, undefined, whole.error?.message);
        assert.equal(whole.heads.length, reqs.length);
        reqs.forEach(({ r }, i) => {
          const h = whole.heads[i]!;
          assert.equal(h.method, r.method);
          assert.equal(h.target, r.path);
          assert.equal(whole.bodies[i], r.body);
          for (const [n, v] of r.fields) assert.ok(h.headers[n.toLowerCase()]?.includes(v), `${n}: ${v}`);
          if (r.chunked && r.trailers.length > 0) {
            for (const [n, v] of r.trailers) assert.ok(whole.trailers[i]?.[n.toLowerCase()]?.includes(v));
          } else assert.equal(whole.trailers[i], undefined);
        });
        sameReading(whole, parse(split(text, cuts), 1 << 16));
      },
    ),
    { numRuns: 1500 },
  );
});

test('fuzz: valid requests with bytes flipped, inserted or cut are read the same in any pieces', () => {
  fc.assert(
    fc.property(
      request,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean()), {
        minLength: 1,
        maxLength: 6,
      }),
      fc.array(fc.nat(), { maxLength: 8 }),
      fc.nat(),
      ({ text }, edits, cuts, cut) => {
        let t = text;
        for (const [at, byte, insert] of edits) {
          const i = at % (t.length + 1);
          t = t.slice(0, i) + String.fromCharCode(byte) + t.slice(insert ? i : i + 1);
        }
        t = t.slice(0, cut % (t.length + 1));
        const whole = parse([t], 256);
        checkShape(whole);
        sameReading(whole, parse(split(t, cuts), 256));
      },
    ),
    { numRuns: 3000 },
  );
});

test('fuzz: random bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), fc.array(fc.nat(), { maxLength: 8 }), (bytes, cuts) => {
      const t = Buffer.from(bytes).toString('latin1');
      const whole = parse([t], 256);
      checkShape(whole);
      sameReading(whole, parse(split(t, cuts), 256));
    }),
    { numRuns: 3000 },
  );
});
