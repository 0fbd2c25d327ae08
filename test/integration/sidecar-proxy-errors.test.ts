// Integration: the proxy's own answers — unknown service, no route, no healthy endpoint,
// upstream connect failure, route timeout, oversized headers, the connection cap — each with
// its status, stable code and a body that says what happened; plus redirects and direct
// responses from the route table.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import {
  closeServer,
  cluster,
  endpoint,
  forwardRoute,
  get,
  httpListener,
  listen,
  newProxy,
  portOf,
  prefixMatch,
  rawExchange,
  runtimeConfig,
} from './sidecar-proxy-helpers.js';
import type { Proxy } from '../../src/sidecar/proxy/proxy.js';
import type { Route } from '../../src/sidecar/runtime-config.js';

let app: http.Server;
let proxy: Proxy;
let port: number;
let closedPort: number;

function route(name: string, action: Route['action'], path = '/'): Route {
  return {
    name,
    match: { path: { exact: path }, caseSensitive: true, headers: [], query: [] },
    action,
    headers: { requestAdd: [], requestRemove: [], responseAdd: [], responseRemove: [] },
  };
}

before(async () => {
  app = http.createServer((req, res) => {
    if (req.url === '/hang') return; // never answers
    res.end('ok');
  });
  const appPort = await listen(app);
  const probe = net.createServer();
  closedPort = await listen(probe);
  await closeServer(probe);

  const listener = { ...httpListener('outbound', 'outbound', 'outbound'), maxRequestHeadersBytes: 2048 };
  const idle = { ...httpListener('idle', 'outbound', 'outbound'), streamIdleTimeoutMs: 150 };
  proxy = newProxy();
  await proxy.apply(
    runtimeConfig(
      [listener, idle],
      [
        {
          name: 'outbound',
          virtualHosts: [
            { name: 'ok', domains: ['ok'], routes: [forwardRoute('ok', 'ok')] },
            { name: 'empty', domains: ['empty'], routes: [forwardRoute('empty', 'empty')] },
            { name: 'down', domains: ['down'], routes: [forwardRoute('down', 'down')] },
            { name: 'slow', domains: ['slow'], routes: [forwardRoute('slow', 'ok', { timeoutMs: 150 })] },
            {
              name: 'paths',
              domains: ['paths'],
              routes: [
                forwardRoute('only', 'ok', {}, { ...prefixMatch(), path: { exact: '/only' } }),
                route('moved', { kind: 'redirect', status: 301, host: 'new', path: '/there' }, '/moved'),
                route('teapot', { kind: 'direct', status: 418, body: 'short and stout' }, '/teapot'),
              ],
            },
          ],
        },
      ],
      [
        cluster('ok', 'http1', [endpoint(appPort)]),
        cluster('empty', 'http2', [endpoint(appPort, { healthy: false })]),
        cluster('down', 'http1', [endpoint(closedPort)]),
      ],
    ),
  );
  port = portOf(proxy, 'outbound');
});

after(async () => {
  await proxy.close();
  await closeServer(app);
});

test('unknown service → 404 naming the service', async () => {
  const res = await get(port, '/', { headers: { host: 'nosuch:8080' } });
  assert.equal(res.status, 404);
  assert.equal(res.headers['x-weft-error'], 'WEFT_E_PROXY_UNKNOWN_SERVICE');
  assert.match(
    res.body,
    /^no service "nosuch" in the mesh \(no virtual host of route table "outbound" matches "nosuch:8080"\)/,
  );
});

test('no matching route → 404 saying so', async () => {
  const res = await get(port, '/elsewhere', { headers: { host: 'paths' } });
  assert.equal(res.status, 404);
  assert.equal(res.headers['x-weft-error'], 'WEFT_E_PROXY_NO_ROUTE');
  assert.match(res.body, /no route for GET \/elsewhere in virtual host "paths"/);
});

test('no healthy endpoint → 503 saying so', async () => {
  const res = await get(port, '/', { headers: { host: 'empty' } });
  assert.equal(res.status, 503);
  assert.equal(res.headers['x-weft-error'], 'WEFT_E_PROXY_NO_HEALTHY_ENDPOINT');
  assert.match(
    res.body,
    /cluster "empty" of service "empty" has no healthy endpoint \(1 endpoint, 0 healthy\)/,
  );
});

test('no healthy endpoint, asked over gRPC → trailers-only UNAVAILABLE', async () => {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    const stream = session.request({
      ':method': 'POST',
      ':path': '/pkg.Svc/Call',
      ':authority': 'empty',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    stream.end();
    const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
    assert.equal(headers[':status'], 200);
    assert.equal(headers['grpc-status'], '14');
    assert.match(decodeURIComponent(String(headers['grpc-message'])), /no healthy endpoint/);
    stream.resume();
    await once(stream, 'close');
  } finally {
    session.close();
  }
});

test('upstream connect failure → 503 with the reason', async () => {
  const res = await get(port, '/', { headers: { host: 'down' } });
  assert.equal(res.status, 503);
  assert.equal(res.headers['x-weft-error'], 'WEFT_E_PROXY_UPSTREAM_CONNECT');
  assert.match(
    res.body,
    new RegExp(`upstream connect error: cluster "down" endpoint 127.0.0.1:${closedPort}: .*ECONNREFUSED`),
  );
  const down = proxy.stats().clusters.find((c) => c.name === 'down')!;
  assert.equal(down.failedRequests, 1);
});

test('LEAST_REQUEST steers away from an endpoint that refuses connections', async () => {
  const slow = http.createServer((_req, res) => setTimeout(() => res.end('ok'), 20));
  const lr = newProxy();
  try {
    await lr.apply(
      runtimeConfig(
        [httpListener('outbound', 'outbound', 'outbound')],
        [
          {
            name: 'outbound',
            virtualHosts: [{ name: 'lr', domains: ['*'], routes: [forwardRoute('lr', 'lr')] }],
          },
        ],
        [
          cluster('lr', 'http1', [endpoint(await listen(slow)), endpoint(closedPort)], {
            lbPolicy: 'LEAST_REQUEST',
          }),
        ],
      ),
    );
    const p = portOf(lr, 'outbound');
    let ok = 0;
    for (let i = 0; i < 40; i++) if ((await get(p, '/')).status === 200) ok++;
    // One refused connection teaches the balancer for good.
    assert.ok(ok >= 39, `${ok}/40 succeeded`);
  } finally {
    await lr.close();
    await closeServer(slow);
  }
});

test('a request the upstream codec refuses is a 500 and leaves no active request behind', async () => {
  const bad = forwardRoute('bad', 'ok');
  // The translator refuses such values; a config built by hand can still carry one.
  bad.headers.requestAdd.push({ name: 'x-bad', value: 'a\nb', action: 'append' });
  const leaky = newProxy();
  try {
    await leaky.apply(
      runtimeConfig(
        [httpListener('outbound', 'outbound', 'outbound')],
        [{ name: 'outbound', virtualHosts: [{ name: 'bad', domains: ['*'], routes: [bad] }] }],
        [cluster('ok', 'http1', [endpoint((app.address() as net.AddressInfo).port)])],
      ),
    );
    const p = portOf(leaky, 'outbound');
    assert.equal((await get(p, '/')).status, 500);
    const upgrade = await rawExchange(
      p,
      'GET / HTTP/1.1\r\nHost: svc\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n',
    );
    assert.match(upgrade, /^HTTP\/1\.1 500 /);
    const ep = leaky.stats().clusters[0]!.endpoints[0]!;
    assert.equal(ep.activeRequests, 0);
    assert.equal(ep.failedRequests, 2);
  } finally {
    await leaky.close();
  }
});

test('request timeout: applied by update(), on time, and never written into a started response', async () => {
  const slowApp = http.createServer((req, res) => {
    if (req.url === '/stream') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('early-');
      const tick = setInterval(() => res.write('tick-'), 5_000);
      res.on('close', () => clearInterval(tick));
    } else req.on('end', () => res.end('ok'));
    req.resume();
  });
  const timed = newProxy();
  const config = (requestTimeoutMs?: number) =>
    runtimeConfig(
      [{ ...httpListener('outbound', 'outbound', 'outbound', listenerPort), requestTimeoutMs }],
      [
        {
          name: 'outbound',
          virtualHosts: [{ name: 'svc', domains: ['*'], routes: [forwardRoute('svc', 'app')] }],
        },
      ],
      [cluster('app', 'http1', [endpoint(slowAppPort)])],
    );
  const slowAppPort = await listen(slowApp);
  let listenerPort = 0;
  try {
    await timed.apply(config());
    listenerPort = portOf(timed, 'outbound');
    await timed.apply(config(1_000)); // same socket: the new timeout must still apply
    assert.equal(portOf(timed, 'outbound'), listenerPort);
    const incomplete = 'POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 10\r\n\r\nx';
    let t0 = Date.now();
    const out = await rawExchange(listenerPort, incomplete, 10_000);
    assert.match(out, /^HTTP\/1\.1 408 /);
    assert.ok(Date.now() - t0 < 3_000, `408 after ${Date.now() - t0} ms`);

    t0 = Date.now();
    const streamed = await rawExchange(listenerPort, incomplete.replace('POST /', 'POST /stream'), 10_000);
    assert.match(streamed, /^HTTP\/1\.1 200 [^]*early-/);
    assert.doesNotMatch(streamed, /408/, 'no status line inside the chunked body');
    assert.ok(Date.now() - t0 < 3_000, `cut after ${Date.now() - t0} ms`);
  } finally {
    await timed.close();
    await closeServer(slowApp);
  }
});

test('transfer-codings other than chunked: 501 for a request, 502 for a response', async () => {
  const req =
    'POST / HTTP/1.1\r\nHost: ok\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n2\r\nab\r\n0\r\n\r\n';
  const out = await rawExchange(port, req);
  assert.match(out, /^HTTP\/1\.1 501 [^]*WEFT_E_PROXY_NOT_IMPLEMENTED[^]*"gzip"/);

  const gzipping = net.createServer((s) =>
    s
      .on('error', () => {})
      .once('data', () =>
        s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n'),
      ),
  );
  const gz = newProxy();
  try {
    await gz.apply(
      runtimeConfig(
        [httpListener('outbound', 'outbound', 'outbound')],
        [
          {
            name: 'outbound',
            virtualHosts: [{ name: 'gz', domains: ['*'], routes: [forwardRoute('gz', 'gz')] }],
          },
        ],
        [cluster('gz', 'http1', [endpoint(await listen(gzipping))])],
      ),
    );
    const res = await get(portOf(gz, 'outbound'), '/');
    assert.equal(res.status, 502);
    assert.match(res.body, /transfer-coding "gzip"/);
  } finally {
    await gz.close();
    await closeServer(gzipping);
  }
});

test('route timeout → 504', async () => {
  const t0 = Date.now();
  const res = await get(port, '/hang', { headers: { host: 'slow' } });
  assert.equal(res.status, 504);
  assert.equal(res.headers['x-weft-error'], 'WEFT_E_PROXY_UPSTREAM_TIMEOUT');
  assert.match(
    res.body,
    /upstream request timeout: no complete response from cluster "ok" within the route's 150 ms/,
  );
  assert.ok(Date.now() - t0 < 2_000);
});

test('stream idle timeout of the listener → 504 when the upstream goes quiet', async () => {
  const res = await get(portOf(proxy, 'idle'), '/hang', { headers: { host: 'ok' } });
  assert.equal(res.status, 504);
  assert.equal(res.headers['x-weft-error'], 'WEFT_E_PROXY_STREAM_IDLE_TIMEOUT');
  assert.match(res.body, /stream idle timeout: no bytes in either direction for 150 ms/);
});

test('request headers over the listener limit → 431, on HTTP/1.1 and HTTP/2', async () => {
  const big = 'x'.repeat(4096);
  const res = await get(port, '/', { headers: { host: 'ok', 'x-big': big } });
  assert.equal(res.status, 431);
  assert.match(res.body, /request headers too large: the listener accepts at most 2048 bytes/);

  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    const stream = session.request({ ':path': '/', ':authority': 'ok', 'x-big': big });
    stream.end();
    const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
    assert.equal(headers[':status'], 431);
    stream.resume();
    await once(stream, 'close');
  } finally {
    session.close();
  }
  assert.equal((await get(port, '/', { headers: { host: 'ok' } })).status, 200, 'normal requests still pass');
});

test('redirects and direct responses come from the route table', async () => {
  const moved = await get(port, '/moved?a=1', { headers: { host: 'paths:8080' } });
  assert.equal(moved.status, 301);
  assert.equal(moved.headers.location, 'http://new:8080/there?a=1');
  const teapot = await get(port, '/teapot', { headers: { host: 'paths' } });
  assert.equal(teapot.status, 418);
  assert.equal(teapot.body, 'short and stout');
});

test('an invalid Host is a 400, also where a redirect route would build a Location from it', async () => {
  for (const host of ['paths:abc', '[paths', 'a b', 'user@paths', 'paths:99999']) {
    const out = await rawExchange(port, `GET /moved HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    assert.match(out, /^HTTP\/1\.1 400 /, host);
    assert.match(out, /x-weft-error: WEFT_E_PROXY_BAD_REQUEST/i, host);
  }
  const h2 = http2.connect(`http://127.0.0.1:${port}`);
  try {
    const stream = h2.request({ ':path': '/moved', ':authority': 'paths:abc' });
    stream.end();
    const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
    assert.equal(headers[':status'], 400);
    stream.resume();
    await once(stream, 'close');
  } finally {
    h2.close();
  }
});

test('an Upgrade with an invalid Host on a redirect route is a 400 and the proxy lives on', async () => {
  const out = await rawExchange(
    port,
    'GET /moved HTTP/1.1\r\nHost: paths:abc\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n',
  );
  assert.match(out, /^HTTP\/1\.1 400 /);
  const ok = await rawExchange(
    port,
    'GET /moved HTTP/1.1\r\nHost: paths:8080\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n',
  );
  assert.match(ok, /^HTTP\/1\.1 301 [^]*location: http:\/\/new:8080\/there/i);
});

test('an HTTP/1.1 request without Host (or with two) is a 400; HTTP/1.0 without Host is not', async () => {
  const none = await rawExchange(port, 'GET / HTTP/1.1\r\nConnection: close\r\n\r\n');
  assert.match(none, /^HTTP\/1\.1 400 [^]*needs a Host header/);
  const two = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: ok\r\nHost: ok\r\nConnection: close\r\n\r\n');
  assert.match(two, /^HTTP\/1\.1 400 /);
  const old = await rawExchange(port, 'GET / HTTP/1.0\r\n\r\n');
  assert.match(old, /^HTTP\/1\.1 404 [^]*WEFT_E_PROXY_UNKNOWN_SERVICE/);
  const absolute = await rawExchange(port, 'GET http://ok/ HTTP/1.1\r\nConnection: close\r\n\r\n');
  assert.match(absolute, /^HTTP\/1\.1 200 /);
});

test('connections beyond the listener cap are refused; the others keep working', async () => {
  const small = newProxy({ maxConnectionsPerListener: 2 });
  const sockets: net.Socket[] = [];
  try {
    await small.apply(
      runtimeConfig(
        [httpListener('outbound', 'outbound', 'outbound')],
        [
          {
            name: 'outbound',
            virtualHosts: [{ name: 'ok', domains: ['*'], routes: [forwardRoute('ok', 'ok')] }],
          },
        ],
        [cluster('ok', 'http1', [endpoint((app.address() as net.AddressInfo).port)])],
      ),
    );
    const p = portOf(small, 'outbound');
    for (let i = 0; i < 2; i++) {
      const s = net.connect(p, '127.0.0.1');
      await once(s, 'connect');
      sockets.push(s);
    }
    // Accepted sockets are counted once the server has seen them.
    while (small.stats().listeners[0]!.connections < 2) await new Promise((r) => setImmediate(r));
    const third = net.connect(p, '127.0.0.1');
    third.on('error', () => {});
    third.resume();
    await once(third, 'close');
    sockets[0]!.write('GET / HTTP/1.1\r\nHost: ok\r\nConnection: close\r\n\r\n');
    const chunks: Buffer[] = [];
    sockets[0]!.on('data', (c: Buffer) => chunks.push(c));
    await once(sockets[0]!, 'end');
    assert.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 200/);
  } finally {
    for (const s of sockets) s.destroy();
    await small.close();
  }
});
