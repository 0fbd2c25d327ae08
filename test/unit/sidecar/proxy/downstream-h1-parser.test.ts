// The downstream HTTP/1.1 request parser on its own: heads it reads and what it makes of them
// (framing, keep-alive, Upgrade, Expect), bodies in both framings split at awkward places,
// trailers, pipelined requests, and every request it must refuse so that no other hop on the
// path can read the same bytes as a different request (RFC 9112 §11.2).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  H1RequestError,
  MAX_CHUNK_LINE,
  parseChunkSize,
  parseRequestHead,
} from '../../../../src/sidecar/proxy/downstream-h1-parser.js';
import { parse } from './downstream-h1-feed.js';

function refused(text: string | string[], status = 400): H1RequestError {
  const r = parse(Array.isArray(text) ? text : [text]);
  assert.ok(r.error, `expected a ${status} for ${JSON.stringify(text)}`);
  assert.equal(r.error.status, status, r.error.message);
  return r.error;
}

test('a plain GET: method, target, version, lower-case names, OWS trimmed, repeated fields kept', () => {
  const h = parseRequestHead(
    'GET /a?b=1 HTTP/1.1\r\nHost: svc:8080\r\nX-Many: 1\r\nx-many:  2 \t\r\nAccept:\r\nX-Obs: caf\xe9',
  );
  assert.equal(h.method, 'GET');
  assert.equal(h.target, '/a?b=1');
  assert.equal(h.version, '1.1');
  assert.deepEqual(
    { ...h.headers },
    { host: ['svc:8080'], 'x-many': ['1', '2'], accept: [''], 'x-obs': ['caf\xe9'] },
  );
  assert.equal(h.framing, 'none');
  assert.equal(h.keepAlive, true);
  assert.equal(h.upgrade, false);
  assert.equal(h.expectContinue, false);
});

test('keep-alive: HTTP/1.1 unless close, HTTP/1.0 only when asked', () => {
  assert.equal(parseRequestHead('GET / HTTP/1.1\r\nConnection: foo, Close').keepAlive, false);
  assert.equal(parseRequestHead('GET / HTTP/1.0').keepAlive, false);
  assert.equal(parseRequestHead('GET / HTTP/1.0\r\nConnection: keep-alive').keepAlive, true);
});

test('Upgrade needs both the Upgrade field and the upgrade connection option', () => {
  assert.equal(parseRequestHead('GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket').upgrade, true);
  assert.equal(parseRequestHead('GET / HTTP/1.1\r\nUpgrade: websocket').upgrade, false);
  assert.equal(parseRequestHead('GET / HTTP/1.1\r\nConnection: upgrade').upgrade, false);
});

test('framing: Content-Length, chunked, none; Expect: 100-continue', () => {
  const cl = parseRequestHead('PUT / HTTP/1.1\r\nContent-Length: 12\r\nExpect: 100-Continue');
  assert.equal(cl.framing, 'length');
  assert.equal(cl.contentLength, 12);
  assert.equal(cl.expectContinue, true);
  assert.equal(parseRequestHead('PUT / HTTP/1.1\r\nContent-Length: 0').framing, 'none');
  assert.equal(parseRequestHead('PUT / HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked').framing, 'chunked');
});

test('request targets: origin-form, absolute-form, asterisk; nothing else', () => {
  assert.equal(parseRequestHead('GET http://svc:80/x HTTP/1.1').target, 'http://svc:80/x');
  assert.equal(parseRequestHead('OPTIONS * HTTP/1.1').target, '*');
  for (const t of ['foo', 'svc:80', '/a\x7f', '/a\x01b']) refused(`GET ${t} HTTP/1.1\r\n\r\n`);
});

const SMUGGLING: Array<[string, string]> = [
  [
    'Content-Length with Transfer-Encoding',
    'POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n',
  ],
  ['two Content-Length fields', 'POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n'],
  ['two equal Content-Length fields', 'POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n'],
  ['a Content-Length list', 'POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n'],
  ['a signed Content-Length', 'POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n'],
  ['a hex Content-Length', 'POST / HTTP/1.1\r\nContent-Length: 0x3\r\n\r\n'],
  ['an empty Content-Length', 'POST / HTTP/1.1\r\nContent-Length:\r\n\r\n'],
  ['a huge Content-Length', 'POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n'],
  [
    'Transfer-Encoding not ending with chunked',
    'POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n',
  ],
  ['Transfer-Encoding: identity', 'POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n'],
  ['chunked twice', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n'],
  ['an empty Transfer-Encoding', 'POST / HTTP/1.1\r\nTransfer-Encoding: \r\n\r\n'],
  ['a Transfer-Encoding that is not a token', 'POST / HTTP/1.1\r\nTransfer-Encoding: "chunked"\r\n\r\n'],
  ['Transfer-Encoding in HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
  ['obs-fold', 'GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n'],
  ['obs-fold with a tab', 'GET / HTTP/1.1\r\nX: a\r\n\tTransfer-Encoding: chunked\r\n\r\n'],
  ['whitespace before the colon', 'GET / HTTP/1.1\r\nContent-Length : 3\r\n\r\nabc'],
  ['whitespace before a field name', 'GET / HTTP/1.1\r\n Host: a\r\n\r\n'],
  ['a field name that is not a token', 'GET / HTTP/1.1\r\nX(y): a\r\n\r\n'],
  ['an empty field name', 'GET / HTTP/1.1\r\n: a\r\n\r\n'],
  ['a line without a colon', 'GET / HTTP/1.1\r\nHost\r\n\r\n'],
  ['NUL in a value', 'GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n'],
  ['a bare CR in a value', 'GET / HTTP/1.1\r\nX: a\rb\r\n\r\n'],
  ['a bare LF ending a field line', 'GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n'],
  ['bare LF line endings', 'GET / HTTP/1.1\nHost: a\n\n'],
  ['a bare LF ending the head', 'GET / HTTP/1.1\r\nHost: a\r\n\n'],
  ['a method that is not a token', 'G(T / HTTP/1.1\r\n\r\n'],
  ['two spaces in the request line', 'GET  / HTTP/1.1\r\n\r\n'],
  ['a tab in the request line', 'GET\t/ HTTP/1.1\r\n\r\n'],
  ['HTTP/0.9', 'GET /\r\n\r\n'],
  ['HTTP/2.0 in a request line', 'GET / HTTP/2.0\r\n\r\n'],
  ['HTTP/1.2', 'GET / HTTP/1.2\r\n\r\n'],
  ['a lower-case version', 'GET / http/1.1\r\n\r\n'],
  ['a space after the version', 'GET / HTTP/1.1 \r\n\r\n'],
];

for (const [name, text] of SMUGGLING) {
  test(`refused (400): ${name}`, () => {
    const err = refused(text);
    assert.equal(err.code, 'WEFT_E_PROXY_BAD_REQUEST');
    assert.match(err.message, /^bad request: /);
  });
}

const CHUNKED = 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n';
const BAD_CHUNKS: Array<[string, string]> = [
  ['a chunk size that is not hex', '5g\r\nhello\r\n0\r\n\r\n'],
  ['a negative chunk size', '-5\r\nhello\r\n0\r\n\r\n'],
  ['whitespace after the chunk size', '5 \r\nhello\r\n0\r\n\r\n'],
  ['whitespace before an extension', '5 ;a=b\r\nhello\r\n0\r\n\r\n'],
  ['a bare LF after the chunk size', '5\nhello\r\n0\r\n\r\n'],
  ['a chunk size too large', 'fffffffffffffff\r\n'],
  ['chunk data longer than its size', '3\r\nhello\r\n0\r\n\r\n'],
  ['chunk data not followed by CRLF', '5\r\nhelloXX0\r\n\r\n'],
  ['a control character in an extension', '5;a=\x01\r\nhello\r\n0\r\n\r\n'],
  ['obs-fold in trailers', '0\r\nX: a\r\n b\r\n\r\n'],
  ['a bare LF in trailers', '0\r\nX: a\n\r\n'],
];

for (const [name, body] of BAD_CHUNKS) {
  test(`refused (400): ${name}`, () => void refused(CHUNKED + body));
}

test('an over-long chunk-size line is refused without waiting for its end', () => {
  refused([CHUNKED, '1;' + 'x'.repeat(MAX_CHUNK_LINE)]);
  refused([CHUNKED, '1;' + 'x'.repeat(MAX_CHUNK_LINE) + '\r\na\r\n0\r\n\r\n']);
});

test('CONNECT is not implemented (501)', () => {
  const err = refused('CONNECT svc:443 HTTP/1.1\r\nHost: svc:443\r\n\r\n', 501);
  assert.equal(err.code, 'WEFT_E_PROXY_NOT_IMPLEMENTED');
});

test('heads over the limit are a 431, found complete or still arriving', () => {
  const big = `GET / HTTP/1.1\r\nX: ${'a'.repeat(200)}\r\n\r\n`;
  assert.equal(parse([big], 100).error?.status, 431);
  assert.equal(parse([big.slice(0, 150)], 100).error?.status, 431);
  assert.equal(parse([big], 1000).error, undefined);
  assert.equal(parse([CHUNKED + '0\r\n' + `X: ${'a'.repeat(200)}\r\n\r\n`], 100).error?.status, 431);
});

test('a chunked body with extensions and trailers, split at every byte', () => {
  const text = `${CHUNKED}5;ext="q"\r\nhello\r\n0007\r\n, world\r\n0\r\nX-Sum: 1\r\nx-sum: 2\r\n\r\n`;
  const whole = parse([text]);
  assert.equal(whole.error, undefined);
  assert.deepEqual(whole.bodies, ['hello, world']);
  assert.deepEqual({ ...whole.trailers[0] }, { 'x-sum': ['1', '2'] });
  const bytewise = parse(text.split(''));
  assert.deepEqual(bytewise.bodies, whole.bodies);
  assert.deepEqual(bytewise.trailers, whole.trailers);
});

test('a Content-Length body, pipelined requests, leading empty lines, the rest kept', () => {
  const text =
    'POST /1 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello' +
    '\r\n\r\nGET /2 HTTP/1.1\r\n\r\n' +
    `${CHUNKED.replace('/', '/3')}0\r\n\r\n` +
    'GET /4 HT';
  const r = parse([text]);
  assert.equal(r.error, undefined);
  assert.deepEqual(
    r.heads.map((h) => h.target),
    ['/1', '/2', '/3'],
  );
  assert.deepEqual(r.bodies, ['hello', '', '']);
  assert.deepEqual(r.trailers, [undefined, undefined, undefined]);
});

test('an Upgrade head stops the parser; the bytes after it are handed back untouched', () => {
  const r = parse(['GET /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello']);
  assert.equal(r.heads.length, 1);
  assert.equal(r.heads[0]!.upgrade, true);
  assert.equal(r.bodies.length, 0, 'no complete request: the socket leaves the codec');
  assert.equal(r.rest, '\x81\x05hello');
});

test('parseChunkSize: hex, extensions, limits', () => {
  assert.equal(parseChunkSize('0'), 0);
  assert.equal(parseChunkSize('1aF'), 0x1af);
  assert.equal(parseChunkSize('10;a=b;c'), 16);
  assert.throws(() => parseChunkSize(''), H1RequestError);
  assert.throws(() => parseChunkSize('12345678901234'), H1RequestError);
});
