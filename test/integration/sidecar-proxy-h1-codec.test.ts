// Integration: the downstream HTTP/1.1 codec (H1Server) on real sockets, with handlers that
// answer in each of the ways the proxy does — whole responses, streamed ones with trailers,
// 100-continue, early answers to unread bodies — and the connection-level behaviour around
// them: keep-alive, pipelining in order, HTTP/1.0, refusals, timeouts, drain and Upgrade.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { silentLogger } from '../../src/log.js';
import type { Downstream, RequestHead } from '../../src/sidecar/proxy/downstream.js';
import { H1Server, type H1ServerLimits } from '../../src/sidecar/proxy/downstream-h1.js';
import type { HeaderMap } from '../../src/sidecar/proxy/header-map.js';

const LIMITS: H1ServerLimits = {
  maxRequestHeadersBytes: 4096,
  headersTimeoutMs: 60_000,
  requestTimeoutMs: 0,
  keepAliveTimeoutMs: 60_000,
};

function map(o: Record<string, string>): HeaderMap {
  const m = Object.create(null) as HeaderMap;
  for (const [k, v] of Object.entries(o)) m[k] = [v];
  return m;
}

function readAll(ds: Downstream): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    ds.body.on('data', (c: Buffer) => chunks.push(c));
    ds.body.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
}

interface Harness {
  port: number;
  server: H1Server;
  done: boolean[];
  /** Paths of the requests handed to the handler, in order. */
  received: string[];
  upgrades: Array<{ head: RequestHead; rest: string; socket: net.Socket }>;
  close(): Promise<void>;
}

/** An H1Server whose handler answers by path (see the cases below). */
async function harness(limits: Partial<H1ServerLimits> = {}): Promise<Harness> {
  const done: boolean[] = [];
  const received: string[] = [];
  const upgrades: Harness['upgrades'] = [];
  const server = new H1Server(
    { ...LIMITS, ...limits },
    {
      onRequest: (ds) => {
        received.push(ds.head.path);
        ds.onDone((complete) => done.push(complete));
        void answer(ds);
      },
      onUpgrade: (head, socket, rest) => upgrades.push({ head, rest: rest.toString('latin1'), socket }),
    },
    silentLogger(),
  );
  const sockets = new Set<net.Socket>();
  const tcp = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    server.connection(s);
  });
  tcp.listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  return {
    port: (tcp.address() as net.AddressInfo).port,
    server,
    done,
    received,
    upgrades,
    async close() {
      server.close();
      for (const s of sockets) s.destroy();
      for (const u of upgrades) u.socket.destroy();
      tcp.close();
      await once(tcp, 'close');
    },
  };
}

async function answer(ds: Downstream): Promise<void> {
  const path = ds.head.path;
  if (path === '/whole') return ds.respondWhole(200, map({ 'x-a': '1' }), Buffer.from('hello'));
  if (path.startsWith('/slow/')) {
    await new Promise((r) => setTimeout(r, Number(path.slice(6))));
    return ds.respondWhole(200, map({}), Buffer.from(path));
  }
  if (path === '/stream') {
    ds.respond(200, map({ 'content-type': 'text/plain' }), false);
    ds.responseBody.write('ab');
    await new Promise((r) => setTimeout(r, 10));
    ds.responseBody.write('cd');
    return ds.end(map({ 'x-trailer': 't' }));
  }
  if (path === '/open') {
    ds.respond(200, map({}), false);
    ds.responseBody.write('ab');
    return; // never ends
  }
  if (path === '/echo') {
    const body = await readAll(ds);
    const t = ds.requestTrailers();
    return ds.respondWhole(200, map({ 'x-trailers': JSON.stringify(t ?? null) }), Buffer.from(body));
  }
  if (path === '/early') return ds.respondWhole(413, map({}), Buffer.from('no thanks'));
  if (path === '/continue') {
    ds.sendContinue();
    return ds.respondWhole(200, map({}), Buffer.from(await readAll(ds)));
  }
  if (path === '/no-continue') return ds.respondWhole(417, map({}), Buffer.alloc(0));
  if (path === '/head') return ds.respondWhole(200, map({ 'content-length': '5' }), Buffer.alloc(0));
  if (path === '/bad-header') {
    try {
      ds.respond(200, map({ 'x-bad': 'a\r\nb' }), true);
    } catch {
      return ds.respondWhole(502, map({}), Buffer.from('refused'));
    }
  }
  if (path === '/late-reset') {
    ds.respondWhole(200, map({}), Buffer.from('done'));
    await new Promise((r) => setImmediate(r));
    return ds.reset(); // too late to matter: the connection has moved on
  }
  if (path === '/hang') return; // never answers
  ds.respondWhole(404, map({}), Buffer.alloc(0));
}

/** A raw client: write bytes, wait for what comes back. */
class Client {
  readonly socket: net.Socket;
  text = '';
  closed = false;
  private waiters: Array<() => void> = [];
  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('data', (d: Buffer) => {
      this.text += d.toString('latin1');
      this.wake();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }
  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
  send(s: string): this {
    this.socket.write(s, 'latin1');
    return this;
  }
  async until(test: (text: string) => boolean, what: string): Promise<string> {
    while (!test(this.text)) {
      if (this.closed) throw new Error(`closed before ${what}: ${JSON.stringify(this.text)}`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
    return this.text;
  }
  /** Waits for `n` complete responses that carry a content-length. */
  responses(n: number): Promise<string[]> {
    return this.until((t) => splitResponses(t).length >= n, `${n} responses`).then(splitResponses);
  }
  async whenClosed(): Promise<string> {
    await this.until(() => this.closed, 'close');
    return this.text;
  }
  destroy(): void {
    this.socket.destroy();
  }
}

/** Resolves once `cond` holds, checked after each turn of the event loop. */
async function eventually(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

function splitResponses(text: string): string[] {
  const out: string[] = [];
  let rest = text;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) return out;
    const m = /content-length: (\d+)/i.exec(rest.slice(0, end));
    const len = m ? Number(m[1]) : 0;
    if (rest.length < end + 4 + len) return out;
    out.push(rest.slice(0, end + 4 + len));
    rest = rest.slice(end + 4 + len);
  }
}

test('pipelined requests on one connection are answered in order, however long each takes', async () => {
  const h = await harness();
  const c = new Client(h.port);
  try {
    c.send(
      'GET /slow/60 HTTP/1.1\r\nHost: a\r\n\r\nGET /slow/0 HTTP/1.1\r\nHost: a\r\n\r\n' +
        'POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyzGET /whole HTTP/1.1\r\nHost: a\r\n\r\n',
    );
    const r = await c.responses(4);
    await eventually(() => h.done.length === 4);
    assert.match(r[0]!, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n\/slow\/60$/);
    assert.match(r[1]!, /\/slow\/0$/);
    assert.match(r[2]!, /xyz$/);
    assert.match(r[3]!, /^HTTP\/1\.1 200 OK\r\nx-a: 1\r\ncontent-length: 5\r\n\r\nhello$/);
    assert.doesNotMatch(c.text, /connection:/i, 'HTTP/1.1 keep-alive is the default: nothing to say');
    assert.equal(c.closed, false);
    assert.deepEqual(h.done, [true, true, true, true]);
  } finally {
    c.destroy();
    await h.close();
  }
});

test('a whole response is one write of head and body', async () => {
  const h = await harness();
  const writes: unknown[] = [];
  const tcp = net.createServer((s) => {
    const write = s.write.bind(s) as (...a: unknown[]) => boolean;
    (s as { write: unknown }).write = (...a: unknown[]) => {
      writes.push(a[0]);
      return write(...a);
    };
    h.server.connection(s);
  });
  tcp.listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  const c = new Client((tcp.address() as net.AddressInfo).port);
  try {
    c.send('GET /whole HTTP/1.1\r\nHost: a\r\n\r\n');
    await c.responses(1);
    assert.equal(writes.length, 1);
    assert.match(String(writes[0]), /^HTTP\/1\.1 200 OK\r\n[^]*hello$/);
  } finally {
    c.destroy();
    tcp.close();
    await h.close();
  }
});

test('a streamed response is chunked, with trailers; HEAD gets the head only', async () => {
  const h = await harness();
  const c = new Client(h.port);
  try {
    c.send('GET /stream HTTP/1.1\r\nHost: a\r\n\r\n');
    const text = await c.until((t) => t.endsWith('0\r\nx-trailer: t\r\n\r\n'), 'the last chunk');
    assert.match(
      text,
      /^HTTP\/1\.1 200 OK\r\ncontent-type: text\/plain\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n/,
    );
    c.text = '';
    c.send('HEAD /head HTTP/1.1\r\nHost: a\r\n\r\nGET /whole HTTP/1.1\r\nHost: a\r\n\r\n');
    await c.until((t) => t.endsWith('hello'), 'the response after HEAD');
    assert.match(c.text, /^HTTP\/1\.1 200 OK\r\ncontent-length: 5\r\n\r\nHTTP\/1\.1 200 OK/);
  } finally {
    c.destroy();
    await h.close();
  }
});

test('a chunked request body arrives with its trailers', async () => {
  const h = await harness();
  const c = new Client(h.port);
  try {
    c.send('POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n');
    await new Promise((r) => setTimeout(r, 20)); // a second read, not a wait for something
    c.send('2;x=y\r\nde\r\n0\r\nX-Check: 42\r\n\r\n');
    const [r] = await c.responses(1);
    assert.match(r!, /x-trailers: \{"x-check":\["42"\]\}/);
    assert.match(r!, /abcde$/);
  } finally {
    c.destroy();
    await h.close();
  }
});

test('an answer before the body is read: the rest is read and dropped, the connection goes on', async () => {
  const h = await harness();
  const c = new Client(h.port);
  try {
    c.send('POST /early HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345');
    await c.responses(1);
    c.send('67890GET /whole HTTP/1.1\r\nHost: a\r\n\r\n');
    const r = await c.responses(2);
    assert.match(r[0]!, /^HTTP\/1\.1 413 /);
    assert.match(r[1]!, /hello$/);
  } finally {
    c.destroy();
    await h.close();
  }
});

test('Expect: 100-continue: the 100 when the handler asks; no 100 means the connection closes', async () => {
  const h = await harness();
  const c = new Client(h.port);
  const d = new Client(h.port);
  try {
    c.send('PUT /continue HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n');
    await c.until((t) => t === 'HTTP/1.1 100 Continue\r\n\r\n', 'the 100');
    c.send('ok');
    await c.until((t) => t.endsWith('ok'), 'the response');
    assert.doesNotMatch(c.text, /connection: close/);

    d.send('PUT /no-continue HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n');
    const text = await d.whenClosed();
    assert.match(text, /^HTTP\/1\.1 417 [^]*connection: close\r\n/);
  } finally {
    c.destroy();
    d.destroy();
    await h.close();
  }
});

test('HTTP/1.0: closed after the response unless keep-alive is asked for', async () => {
  const h = await harness();
  const a = new Client(h.port);
  const b = new Client(h.port);
  const s = new Client(h.port);
  try {
    a.send('GET /whole HTTP/1.0\r\n\r\n');
    assert.match(await a.whenClosed(), /^HTTP\/1\.1 200 OK\r\n[^]*connection: close\r\n\r\nhello$/);
    b.send('GET /whole HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    const [r] = await b.responses(1);
    assert.match(r!, /connection: keep-alive\r\n/);
    b.send('GET /whole HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    await b.responses(2);
    assert.equal(b.closed, false);
    // No length and no chunking in HTTP/1.0: the body ends with the connection.
    s.send('GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    assert.match(await s.whenClosed(), /connection: close\r\n\r\nabcd$/);
  } finally {
    for (const c of [a, b, s]) c.destroy();
    await h.close();
  }
});

test('refusals: 400 (with the stable code), 431 and 501; the connection is closed after', async () => {
  const h = await harness({ maxRequestHeadersBytes: 200 });
  const cases: Array<[string, RegExp]> = [
    ['POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n', /^HTTP\/1\.1 400 [^]*bare LF|^HTTP\/1\.1 400 /],
    ['GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n', /^HTTP\/1\.1 400 [^]*obsolete line folding/],
    [`GET / HTTP/1.1\r\nX: ${'a'.repeat(300)}\r\n\r\n`, /^HTTP\/1\.1 431 [^]*at most 200 bytes/],
    ['CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n', /^HTTP\/1\.1 501 [^]*WEFT_E_PROXY_NOT_IMPLEMENTED/],
  ];
  try {
    for (const [req, expected] of cases) {
      const c = new Client(h.port);
      const text = await c.send(req).whenClosed();
      assert.match(text, expected, req);
      if (/^HTTP\/1\.1 400/.test(text)) assert.match(text, /x-weft-error: WEFT_E_PROXY_BAD_REQUEST/);
    }
    // A broken chunked body after the request was handed over: the exchange is aborted.
    const c = new Client(h.port);
    const text = await c
      .send('POST /hang HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n')
      .whenClosed();
    assert.match(text, /^HTTP\/1\.1 400 [^]*invalid chunk size/);
    await eventually(() => h.done.length > 0);
    assert.deepEqual(h.done, [false]);
  } finally {
    await h.close();
  }
});

test('timeouts: headers (408), whole request (408, or a cut once the response started), keep-alive idle', async () => {
  const h = await harness({ headersTimeoutMs: 300, requestTimeoutMs: 600, keepAliveTimeoutMs: 300 });
  try {
    const t0 = Date.now();
    const head = await new Client(h.port).send('GET / HTTP/1.1\r\nHost: a\r\n').whenClosed();
    assert.match(head, /^HTTP\/1\.1 408 [^]*request timeout/);
    assert.ok(Date.now() - t0 < 2_000);

    const body = await new Client(h.port)
      .send('POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab')
      .whenClosed();
    assert.match(body, /^HTTP\/1\.1 408 /);

    const started = await new Client(h.port)
      .send('POST /open HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab')
      .whenClosed();
    assert.match(started, /^HTTP\/1\.1 200 [^]*\r\n2\r\nab$/);
    assert.doesNotMatch(started, /408/);

    const idle = new Client(h.port);
    await idle.send('GET /whole HTTP/1.1\r\nHost: a\r\n\r\n').responses(1);
    const t1 = Date.now();
    await idle.whenClosed();
    assert.ok(Date.now() - t1 >= 250, 'not before the keep-alive timeout');
    assert.equal(idle.text.match(/HTTP\/1\.1/g)?.length, 1, 'closed without a word');
  } finally {
    await h.close();
  }
});

test('update(): a new header size limit applies to an open connection', async () => {
  const h = await harness();
  const c = new Client(h.port);
  try {
    await c.send(`GET /whole HTTP/1.1\r\nX: ${'a'.repeat(300)}\r\n\r\n`).responses(1);
    h.server.update({ ...LIMITS, maxRequestHeadersBytes: 200 });
    c.send(`GET /whole HTTP/1.1\r\nX: ${'a'.repeat(300)}\r\n\r\n`);
    assert.match(await c.whenClosed(), /HTTP\/1\.1 431 /);
  } finally {
    c.destroy();
    await h.close();
  }
});

test('drain: idle connections close at once, a busy one after its response with connection: close', async () => {
  const h = await harness();
  const idle = new Client(h.port);
  const busy = new Client(h.port);
  try {
    await idle.send('GET /whole HTTP/1.1\r\nHost: a\r\n\r\n').responses(1);
    busy.send('GET /slow/150 HTTP/1.1\r\nHost: a\r\n\r\n');
    await eventually(() => h.received.includes('/slow/150'));
    h.server.drain();
    await idle.whenClosed();
    assert.equal(busy.closed, false);
    assert.match(await busy.whenClosed(), /^HTTP\/1\.1 200 OK\r\n[^]*connection: close\r\n[^]*\/slow\/150$/);
  } finally {
    idle.destroy();
    busy.destroy();
    await h.close();
  }
});

test('a client that half-closes with a request under way aborts it', async () => {
  const h = await harness();
  const c = new Client(h.port);
  try {
    c.send('GET /hang HTTP/1.1\r\nHost: a\r\n\r\n');
    await eventually(() => h.received.length > 0);
    c.socket.end();
    assert.equal(await c.whenClosed(), '');
    await eventually(() => h.done.length > 0);
    assert.deepEqual(h.done, [false]);
  } finally {
    c.destroy();
    await h.close();
  }
});

test('a reset from an exchange already answered leaves the connection to the next request', async () => {
  const h = await harness();
  const c = new Client(h.port);
  try {
    c.send('GET /late-reset HTTP/1.1\r\nHost: a\r\n\r\nGET /slow/30 HTTP/1.1\r\nHost: a\r\n\r\n');
    const r = await c.responses(2);
    assert.match(r[0]!, /done$/);
    assert.match(r[1]!, /\/slow\/30$/);
    assert.equal(c.closed, false);
  } finally {
    c.destroy();
    await h.close();
  }
});

test('an invalid response header is refused before anything is written', async () => {
  const h = await harness();
  const c = new Client(h.port);
  try {
    const [r] = await c.send('GET /bad-header HTTP/1.1\r\nHost: a\r\n\r\n').responses(1);
    assert.match(r!, /^HTTP\/1\.1 502 [^]*refused$/);
  } finally {
    c.destroy();
    await h.close();
  }
});

test('Upgrade: the head and the bytes after it are handed over with the socket', async () => {
  const h = await harness();
  const c = new Client(h.port);
  try {
    c.send(
      'GET /ws?x=1 HTTP/1.1\r\nHost: svc:80\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x02hi',
    );
    await eventually(() => h.upgrades.length > 0);
    const u = h.upgrades[0]!;
    assert.equal(u.head.authority, 'svc:80');
    assert.equal(u.head.path, '/ws?x=1');
    assert.deepEqual(u.head.headers['upgrade'], ['websocket']);
    assert.equal(u.head.headers['host'], undefined);
    assert.equal(u.rest, '\x81\x02hi');
    u.socket.write('HTTP/1.1 101 Switching Protocols\r\n\r\n');
    u.socket.resume();
    await c.until((t) => t.startsWith('HTTP/1.1 101'), 'the 101');
  } finally {
    c.destroy();
    await h.close();
  }
});
