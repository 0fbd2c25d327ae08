// Integration: byte streams through two proxies — a WebSocket echo over HTTP/1.1 Upgrade, and
// opaque TCP with a protocol where the server speaks first, half-close included.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import {
  closeServer,
  cluster,
  encodeWsFrame,
  endpoint,
  forwardRoute,
  httpListener,
  listen,
  newProxy,
  portOf,
  rawExchange,
  runtimeConfig,
  startMesh,
  wsAccept,
  WsFrameReader,
} from './sidecar-proxy-helpers.js';
import type { TcpListener } from '../../src/sidecar/runtime-config.js';

function nextFrame(socket: Duplex, reader: WsFrameReader): Promise<{ opcode: number; payload: Buffer }> {
  return new Promise((resolve, reject) => {
    const onData = (c: Buffer): void => {
      const [f] = reader.push(c);
      if (f) {
        socket.off('data', onData);
        resolve(f);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

test('WebSocket echo through two proxies', async () => {
  const app = http.createServer((_req, res) => res.end('not a websocket'));
  app.on('upgrade', (req, socket: Duplex) => {
    const key = String(req.headers['sec-websocket-key']);
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${wsAccept(key)}\r\n\r\n`,
    );
    const reader = new WsFrameReader();
    socket.on('data', (c: Buffer) => {
      for (const f of reader.push(c)) {
        if (f.opcode === 0x8) return void socket.end(encodeWsFrame(0x8, Buffer.alloc(0), false));
        socket.write(encodeWsFrame(f.opcode, Buffer.from(`echo: ${f.payload.toString()}`), false));
      }
    });
  });
  const mesh = await startMesh(await listen(app), 'http1');
  try {
    const key = randomBytes(16).toString('base64');
    const req = http.request({
      host: '127.0.0.1',
      port: mesh.port,
      path: '/chat',
      headers: {
        host: 'svc',
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-key': key,
        'sec-websocket-version': '13',
      },
      agent: false,
    });
    req.end();
    const [res, socket, head] = (await once(req, 'upgrade')) as [http.IncomingMessage, Duplex, Buffer];
    assert.equal(res.statusCode, 101);
    assert.equal(res.headers['sec-websocket-accept'], wsAccept(key));
    assert.equal(res.headers.upgrade, 'websocket');
    const reader = new WsFrameReader();
    if (head.length > 0) reader.push(head);
    for (const text of ['hello', 'x'.repeat(70_000)]) {
      socket.write(encodeWsFrame(0x1, Buffer.from(text), true));
      const f = await nextFrame(socket, reader);
      assert.equal(f.opcode, 0x1);
      assert.equal(f.payload.toString(), `echo: ${text}`);
    }
    socket.write(encodeWsFrame(0x8, Buffer.alloc(0), true));
    const close = await nextFrame(socket, reader);
    assert.equal(close.opcode, 0x8);
    socket.destroy();
  } finally {
    await mesh.close();
    await closeServer(app);
  }
});

test('a refused upgrade is relayed as a plain response', async () => {
  const app = http.createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' });
    res.end('upgrade refused');
  });
  const mesh = await startMesh(await listen(app), 'http1');
  try {
    const req = http.request({
      host: '127.0.0.1',
      port: mesh.port,
      path: '/',
      headers: { host: 'svc', connection: 'Upgrade', upgrade: 'websocket' },
      agent: false,
    });
    req.end();
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    assert.equal(res.statusCode, 426);
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'upgrade refused');
  } finally {
    await mesh.close();
    await closeServer(app);
  }
});

function tcpListener(name: string, direction: 'inbound' | 'outbound', clusterName: string): TcpListener {
  return { name, direction, kind: 'tcp', host: '127.0.0.1', port: 0, cluster: clusterName };
}

test('an upstream that accepts an Upgrade but never answers gets a 504, and drain is not held up', async () => {
  const mute = net.createServer((s) => s.on('error', () => {}).resume());
  const mutePort = await listen(mute);
  const proxy = newProxy();
  try {
    await proxy.apply(
      runtimeConfig(
        [
          { ...httpListener('routed', 'inbound', 'routed'), streamIdleTimeoutMs: 60_000 },
          { ...httpListener('idle', 'inbound', 'idle'), streamIdleTimeoutMs: 300 },
        ],
        [
          {
            name: 'routed',
            virtualHosts: [
              { name: 'r', domains: ['*'], routes: [forwardRoute('r', 'mute', { timeoutMs: 300 })] },
            ],
          },
          {
            name: 'idle',
            virtualHosts: [{ name: 'i', domains: ['*'], routes: [forwardRoute('i', 'mute')] }],
          },
        ],
        [cluster('mute', 'http1', [endpoint(mutePort)])],
      ),
    );
    const upgrade = 'GET / HTTP/1.1\r\nHost: svc\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n';
    let t0 = Date.now();
    const routed = await rawExchange(portOf(proxy, 'routed'), upgrade, 5_000);
    assert.match(routed, /^HTTP\/1\.1 504 [^]*WEFT_E_PROXY_UPSTREAM_TIMEOUT/);
    assert.ok(Date.now() - t0 < 2_000, `after ${Date.now() - t0} ms`);
    t0 = Date.now();
    const idle = await rawExchange(portOf(proxy, 'idle'), upgrade, 5_000);
    assert.match(idle, /^HTTP\/1\.1 504 [^]*WEFT_E_PROXY_STREAM_IDLE_TIMEOUT/);
    assert.ok(Date.now() - t0 < 2_000, `after ${Date.now() - t0} ms`);
    assert.equal(proxy.stats().clusters[0]!.activeRequests, 0);

    // A client waiting on a mute upstream when drain starts is answered, so drain ends.
    const waiting = rawExchange(portOf(proxy, 'routed'), upgrade, 5_000);
    await new Promise((r) => setTimeout(r, 50));
    t0 = Date.now();
    await proxy.drain();
    assert.ok(Date.now() - t0 < 2_000, `drain took ${Date.now() - t0} ms`);
    assert.match(await waiting, /^HTTP\/1\.1 504 /);
  } finally {
    await proxy.close();
    await closeServer(mute);
  }
});

test('TCP through two proxies: the server greets first, bytes flow both ways, half-close crosses', async () => {
  // Server-first protocol: greets on connect, echoes, and says goodbye after the client's FIN.
  const app = net.createServer({ allowHalfOpen: true }, (s) => {
    s.write('220 weft-test ready\r\n');
    s.pipe(s, { end: false });
    s.on('end', () => s.end('221 bye\r\n'));
  });
  const appPort = await listen(app);
  const inbound = newProxy();
  const outbound = newProxy();
  try {
    await inbound.apply(
      runtimeConfig(
        [tcpListener('inbound|tcp', 'inbound', 'inbound|app')],
        [],
        [cluster('inbound|app', 'tcp', [endpoint(appPort)])],
      ),
    );
    await outbound.apply(
      runtimeConfig(
        [tcpListener('outbound|5432', 'outbound', 'outbound|db')],
        [],
        [cluster('outbound|db', 'tcp', [endpoint(portOf(inbound, 'inbound|tcp'))])],
      ),
    );
    const client = net.connect({
      host: '127.0.0.1',
      port: portOf(outbound, 'outbound|5432'),
      allowHalfOpen: true,
    });
    const received: Buffer[] = [];
    let total = 0;
    const greeting = new Promise<void>((resolve) => {
      client.on('data', (c: Buffer) => {
        received.push(c);
        total += c.length;
        if (Buffer.concat(received).includes('\r\n')) resolve();
      });
    });
    await greeting; // nothing was sent: the greeting came through on its own
    assert.equal(Buffer.concat(received).toString(), '220 weft-test ready\r\n');
    const payload = randomBytes(4 * 1024 * 1024);
    client.end(payload);
    await once(client, 'end');
    const all = Buffer.concat(received);
    const greetingLen = '220 weft-test ready\r\n'.length;
    assert.equal(total, greetingLen + payload.length + '221 bye\r\n'.length);
    assert.ok(all.subarray(greetingLen, greetingLen + payload.length).equals(payload), 'echo intact');
    assert.equal(all.subarray(greetingLen + payload.length).toString(), '221 bye\r\n');
    client.destroy();
    const db = outbound.stats().clusters.find((c) => c.name === 'outbound|db')!;
    assert.equal(db.totalRequests, 1);
  } finally {
    await outbound.close();
    await inbound.close();
    await closeServer(app);
  }
});
