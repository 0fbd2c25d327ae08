// The proxy's own HTTP/1.1 client against raw servers that write exactly the bytes under test:
// framings (length, chunked with trailers, close-delimited, HEAD), responses split at awkward
// places, interim 100s, connection reuse and its limits, and failures.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { H1Pool, type H1Head, type H1Response } from '../../../../src/sidecar/proxy/upstream-h1.js';
import type { HeaderMap } from '../../../../src/sidecar/proxy/header-map.js';

interface Served {
  port: number;
  connections: number;
  requests: string[];
  raw: string;
  close(): Promise<void>;
}

/** A server that answers each request head with `answer(n)`, written in the given pieces. */
async function rawServer(
  answer: (n: number) => string[],
  opts: { endAfter?: boolean } = {},
): Promise<Served> {
  const sockets = new Set<net.Socket>();
  const served: Served = { port: 0, connections: 0, requests: [], raw: '', close: async () => {} };
  let n = 0;
  const server = net.createServer((s) => {
    served.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      served.raw += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      served.requests.push(buf.slice(0, end + 4));
      buf = buf.slice(end + 4);
      const pieces = answer(n++);
      let i = 0;
      const next = (): void => {
        if (i < pieces.length) {
          s.write(pieces[i++]!, 'latin1');
          setTimeout(next, 5);
        } else if (opts.endAfter) s.end();
      };
      next();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  served.port = (server.address() as net.AddressInfo).port;
  served.close = async () => {
    for (const s of sockets) s.destroy();
    server.close();
    await once(server, 'close');
  };
  return served;
}

function head(text: string, extra: Partial<H1Head> = {}): H1Head {
  return {
    head: text,
    hasBody: false,
    chunked: false,
    isHead: false,
    flushHead: false,
    connectTimeoutMs: 1000,
    replayable: false,
    ...extra,
  };
}

const GET = 'GET / HTTP/1.1\r\nhost: x\r\n\r\n';

interface Got {
  status: number;
  headers: HeaderMap;
  body: string;
  whole: boolean;
  trailers: HeaderMap | undefined;
  continued: boolean;
}

function request(pool: H1Pool, h: H1Head): Promise<Got> {
  return new Promise((resolve, reject) => {
    let continued = false;
    pool.request(h, {
      onContinue: () => (continued = true),
      onResponse: (res: H1Response) => {
        if (res.whole) {
          resolve({
            status: res.status,
            headers: res.headers,
            body: res.whole.toString(),
            whole: true,
            trailers: undefined,
            continued,
          });
          return;
        }
        const chunks: Buffer[] = [];
        const body = res.body as Readable;
        body.on('data', (c: Buffer) => chunks.push(c));
        body.on('end', () =>
          resolve({
            status: res.status,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
            whole: false,
            trailers: res.trailers,
            continued,
          }),
        );
      },
      onFailure: (connected, message) => reject(Object.assign(new Error(message), { connected })),
    });
  });
}

const limits = { maxSockets: 4, maxIdle: 4, idleTimeoutMs: 10_000 };

test('a length-framed answer in one read comes whole; the connection is reused', async () => {
  const srv = await rawServer(() => [
    'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhello',
  ]);
  const pool = new H1Pool('127.0.0.1', srv.port, limits);
  try {
    for (let i = 0; i < 3; i++) {
      const r = await request(pool, head(GET));
      assert.equal(r.status, 200);
      assert.equal(r.body, 'hello');
      assert.equal(r.whole, true);
      assert.deepEqual(r.headers['x-a'], ['1', '2']);
    }
    assert.equal(srv.connections, 1);
  } finally {
    pool.destroy();
    await srv.close();
  }
});

test('chunked answer split at every awkward place, with trailers, is streamed', async () => {
  const srv = await rawServer(() => [
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r',
    '\nhel',
    'lo\r',
    '\n6;ext=1\r\n world\r\n0\r\nGrpc-Status: 0\r\n',
    '\r\n',
  ]);
  const pool = new H1Pool('127.0.0.1', srv.port, limits);
  try {
    const r = await request(pool, head(GET));
    assert.equal(r.body, 'hello world');
    assert.equal(r.whole, false);
    assert.deepEqual(r.trailers, Object.assign(Object.create(null), { 'grpc-status': ['0'] }));
    const again = await request(pool, head(GET));
    assert.equal(again.body, 'hello world');
    assert.equal(srv.connections, 1);
  } finally {
    pool.destroy();
    await srv.close();
  }
});

test('interim 100 is reported, 103 dropped; HEAD and 204 have no body; close-delimited reads to EOF', async () => {
  const answers = [
    [
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n',
      'HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok',
    ],
    ['HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n'],
    ['HTTP/1.1 204 No Content\r\n\r\n'],
  ];
  const srv = await rawServer((n) => answers[n]!);
  const pool = new H1Pool('127.0.0.1', srv.port, limits);
  try {
    const r = await request(pool, head(GET));
    assert.equal(r.status, 201);
    assert.equal(r.continued, true);
    assert.equal(r.body, 'ok');
    const h = await request(pool, head('HEAD / HTTP/1.1\r\nhost: x\r\n\r\n', { isHead: true }));
    assert.equal(h.body, '');
    assert.deepEqual(h.headers['content-length'], ['1000']);
    assert.equal((await request(pool, head(GET))).status, 204);
    assert.equal(srv.connections, 1);
  } finally {
    pool.destroy();
    await srv.close();
  }
  const closing = await rawServer(() => ['HTTP/1.1 200 OK\r\n\r\nuntil ', 'the end'], { endAfter: true });
  const pool2 = new H1Pool('127.0.0.1', closing.port, limits);
  try {
    assert.equal((await request(pool2, head(GET))).body, 'until the end');
  } finally {
    pool2.destroy();
    await closing.close();
  }
});

test('Connection: close and a Keep-Alive timeout of 1 s are not reused', async () => {
  const answers = [
    'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n',
  ];
  const srv = await rawServer((n) => [answers[n]!]);
  const pool = new H1Pool('127.0.0.1', srv.port, limits);
  try {
    for (let i = 0; i < 3; i++) await request(pool, head(GET));
    assert.equal(srv.connections, 3);
  } finally {
    pool.destroy();
    await srv.close();
  }
});

test('a request body is written with chunked framing and trailers', async () => {
  const srv = await rawServer(() => ['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n']);
  const pool = new H1Pool('127.0.0.1', srv.port, limits);
  try {
    await new Promise<void>((resolve, reject) => {
      const ex = pool.request(
        head('POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n', {
          hasBody: true,
          chunked: true,
        }),
        { onContinue: () => {}, onResponse: () => resolve(), onFailure: (_c, m) => reject(new Error(m)) },
      );
      ex.body.write(Buffer.from('abc'));
      ex.finish(Object.assign(Object.create(null) as HeaderMap, { 'x-sum': ['3'] }));
    });
    for (let i = 0; i < 50 && !srv.raw.endsWith('\r\n\r\n3\r\nabc\r\n0\r\nx-sum: 3\r\n\r\n'); i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(
      srv.raw,
      'POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-sum: 3\r\n\r\n',
    );
  } finally {
    pool.destroy();
    await srv.close();
  }
});

test('connect failure and reset before the answer are told apart', async () => {
  const probe = net.createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const closedPort = (probe.address() as net.AddressInfo).port;
  probe.close();
  await once(probe, 'close');
  const pool = new H1Pool('127.0.0.1', closedPort, limits);
  await assert.rejects(request(pool, head(GET)), (e: Error & { connected: boolean }) => {
    assert.equal(e.connected, false);
    assert.match(e.message, /ECONNREFUSED/);
    return true;
  });
  pool.destroy();

  const srv = await rawServer(() => ['HTTP/1.1 200 OK\r\nContent-Le'], { endAfter: true });
  const pool2 = new H1Pool('127.0.0.1', srv.port, limits);
  try {
    await assert.rejects(request(pool2, head(GET)), (e: Error & { connected: boolean }) => {
      assert.equal(e.connected, true);
      return true;
    });
  } finally {
    pool2.destroy();
    await srv.close();
  }
});

/**
 * The keep-alive race: every connection answers its first request and then, as the next request
 * arrives, closes without a byte of answer (as an upstream does whose idle timeout fired just as
 * the request went out), with a FIN or, with `reset`, an RST.
 */
async function oneShotServer(
  reset: boolean,
): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    let buf = '';
    let answered = false;
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (!buf.includes('\r\n\r\n')) return;
      buf = '';
      if (answered) {
        if (reset) s.resetAndDestroy();
        else s.end();
        return;
      }
      answered = true;
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    async close() {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

test('a replayable request whose reused connection closes unanswered is sent again, once, on a new one', async () => {
  for (const reset of [false, true]) {
    const srv = await oneShotServer(reset);
    const pool = new H1Pool('127.0.0.1', srv.port, { ...limits, maxSockets: 1 });
    try {
      assert.equal((await request(pool, head(GET, { replayable: true }))).body, 'ok');
      const again = await request(pool, head(GET, { replayable: true }));
      assert.equal(again.status, 200, `replayed after a ${reset ? 'reset' : 'FIN'}`);
      assert.equal(srv.connections(), 2, 'the replay went on a new connection');
    } finally {
      pool.destroy();
      await srv.close();
    }
  }
});

test('a request that may not be repeated, or that failed on a new connection, fails instead', async () => {
  const srv = await oneShotServer(false);
  const pool = new H1Pool('127.0.0.1', srv.port, limits);
  try {
    assert.equal((await request(pool, head(GET))).body, 'ok');
    await assert.rejects(
      request(pool, head(GET, { replayable: false })),
      (e: Error & { connected: boolean }) => {
        assert.equal(e.connected, true);
        return true;
      },
    );
  } finally {
    pool.destroy();
    await srv.close();
  }
  // A new connection that closes unanswered is not the keep-alive race: no replay.
  const silent = net.createServer((s) => s.once('data', () => s.end()));
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  let accepted = 0;
  silent.on('connection', () => accepted++);
  const pool2 = new H1Pool('127.0.0.1', (silent.address() as net.AddressInfo).port, limits);
  try {
    await assert.rejects(request(pool2, head(GET, { replayable: true })));
    assert.equal(accepted, 1);
  } finally {
    pool2.destroy();
    silent.close();
    await once(silent, 'close');
  }
});
