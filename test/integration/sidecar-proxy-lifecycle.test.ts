// Integration: the proxy's life across config changes and shutdown — a config swap while a
// request is in flight (it finishes on the old config; new requests take the new one; the
// listener keeps its socket), listeners opened and closed as the set changes, drain(), and
// HTTP/1.1 ↔ HTTP/2 translation where the cluster protocol asks for it.

import { test } from 'node:test';
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
  outboundConfig,
  portOf,
  runtimeConfig,
  startMesh,
} from './sidecar-proxy-helpers.js';

/** An app whose `/slow` answers start at once and finish when `release()` is called. */
function slowApp(name: string): { server: http.Server; release: () => void; started: Promise<void> } {
  let release = (): void => {};
  let started = (): void => {};
  const startedP = new Promise<void>((r) => (started = r));
  const server = http.createServer((req, res) => {
    if (req.url !== '/slow') return void res.end(name);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write(`${name}:part1;`);
    release = () => res.end(`${name}:part2`);
    started();
  });
  return { server, release: () => release(), started: startedP };
}

test('a config swap during a long request: it finishes on its config, new requests use the new one', async () => {
  const v1 = slowApp('v1');
  const v2 = slowApp('v2');
  const p1 = await listen(v1.server);
  const p2 = await listen(v2.server);
  const proxy = newProxy();
  try {
    await proxy.apply(outboundConfig(p1, 'http1', { version: '1' }));
    const port = portOf(proxy, 'outbound');
    const inflight = get(port, '/slow');
    await v1.started;

    // Same listener address, different cluster endpoints: the socket stays, routing moves.
    await proxy.apply(outboundConfig(p2, 'http1', { version: '2' }));
    assert.equal(portOf(proxy, 'outbound'), port, 'the listener kept its socket');
    assert.equal(proxy.stats().versions?.clusters, '2');
    assert.equal((await get(port, '/')).body, 'v2');

    v1.release();
    const res = await inflight;
    assert.equal(res.status, 200);
    assert.equal(res.body, 'v1:part1;v1:part2');
  } finally {
    await proxy.close();
    await closeServer(v1.server);
    await closeServer(v2.server);
  }
});

test('listeners open and close as the listener set changes', async () => {
  const app = http.createServer((_req, res) => res.end('ok'));
  const appPort = await listen(app);
  const proxy = newProxy();
  const routes = [
    { name: 'rt', virtualHosts: [{ name: 'any', domains: ['*'], routes: [forwardRoute('r', 'c')] }] },
  ];
  const clusters = [cluster('c', 'http1', [endpoint(appPort)])];
  try {
    await proxy.apply(
      runtimeConfig(
        [httpListener('a', 'outbound', 'rt'), httpListener('b', 'outbound', 'rt')],
        routes,
        clusters,
      ),
    );
    const a = portOf(proxy, 'a');
    const b = portOf(proxy, 'b');
    assert.equal((await get(b, '/')).status, 200);
    await proxy.apply(
      runtimeConfig(
        [httpListener('a', 'outbound', 'rt'), httpListener('c', 'outbound', 'rt')],
        routes,
        clusters,
        '2',
      ),
    );
    assert.deepEqual(
      proxy.listening().map((l) => l.name),
      ['a', 'c'],
    );
    assert.equal(portOf(proxy, 'a'), a);
    assert.equal((await get(portOf(proxy, 'c'), '/')).status, 200);
    await assert.rejects(get(b, '/'), /ECONNREFUSED/, 'the removed listener no longer accepts');
  } finally {
    await proxy.close();
    await closeServer(app);
  }
});

test('drain: inbound stops accepting, the in-flight request completes, then drain resolves', async () => {
  const app = slowApp('app');
  const mesh = await startMesh(await listen(app.server), 'http1');
  try {
    const inflight = get(mesh.inboundPort, '/slow');
    await app.started;
    let drained = false;
    const draining = mesh.inbound.drain().then(() => (drained = true));
    // The listening socket closes at once; the open connection is allowed to finish.
    await assert.rejects(
      new Promise((resolve, reject) =>
        net.connect(mesh.inboundPort, '127.0.0.1').on('connect', resolve).on('error', reject),
      ),
      /ECONNREFUSED/,
    );
    assert.equal(drained, false);
    app.release();
    const res = await inflight;
    assert.equal(res.body, 'app:part1;app:part2');
    await draining;
    // The outbound side is not drained: the app may still call out while it shuts down.
    assert.ok(mesh.outbound.listening().length === 1);
  } finally {
    await mesh.close();
    await closeServer(app.server);
  }
});

test("drainOutbound: outbound stops accepting, the app's in-flight call completes, then it resolves", async () => {
  const app = slowApp('app');
  const mesh = await startMesh(await listen(app.server), 'http1');
  try {
    const inflight = get(mesh.port, '/slow');
    await app.started;
    let drained = false;
    const draining = mesh.outbound.drainOutbound().then(() => (drained = true));
    await assert.rejects(
      new Promise((resolve, reject) =>
        net.connect(mesh.port, '127.0.0.1').on('connect', resolve).on('error', reject),
      ),
      /ECONNREFUSED/,
    );
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(drained, false);
    app.release();
    const res = await inflight;
    assert.equal(res.status, 200);
    assert.equal(res.body, 'app:part1;app:part2');
    await draining;
  } finally {
    await mesh.close();
    await closeServer(app.server);
  }
});

test('translation: an HTTP/1.1 or HTTP/2 client → h2c cluster → inbound → http1 app cluster', async () => {
  const app = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.setHeader('x-app-saw-version', req.httpVersion);
      res.end(`${req.method} ${req.url} ${req.headers.host} ${Buffer.concat(chunks).toString()}`);
    });
  });
  const appPort = await listen(app);
  // Outbound talks h2c to the inbound listener (codec auto-detected), which talks HTTP/1.1 to the app.
  const inbound = newProxy();
  const outbound = newProxy();
  try {
    await inbound.apply(
      runtimeConfig(
        [httpListener('inbound', 'inbound', 'in')],
        [
          {
            name: 'in',
            virtualHosts: [{ name: 'in', domains: ['*'], routes: [forwardRoute('app', 'app')] }],
          },
        ],
        [cluster('app', 'http1', [endpoint(appPort)])],
      ),
    );
    await outbound.apply(outboundConfig(portOf(inbound, 'inbound'), 'http2'));
    const port = portOf(outbound, 'outbound');

    const h1 = await get(port, '/up?x=1', { method: 'POST', body: 'from h1', headers: { host: 'svc:80' } });
    assert.equal(h1.status, 200);
    assert.equal(h1.body, 'POST /up?x=1 svc:80 from h1');
    assert.equal(h1.headers['x-app-saw-version'], '1.1');

    // HTTP/2 prior knowledge from the client; outbound cluster (h2) → inbound → app (h1).
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const stream = session.request({ ':method': 'PUT', ':path': '/h2', ':authority': 'svc' });
      stream.end('from h2');
      const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
      const chunks: Buffer[] = [];
      for await (const c of stream) chunks.push(c as Buffer);
      assert.equal(headers[':status'], 200);
      assert.equal(Buffer.concat(chunks).toString(), 'PUT /h2 svc from h2');
    } finally {
      session.close();
    }
  } finally {
    await outbound.close();
    await inbound.close();
    await closeServer(app);
  }
});
