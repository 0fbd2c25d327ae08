// Integration: HTTP/1.1 through two proxies (outbound → inbound → app), the way a meshed app's
// traffic flows: routing by Host and by absolute-form URI, forwarding headers, keep-alive reuse,
// streamed chunked bodies in bounded memory, 100-continue, and the proxy's own error answers.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { pipeline } from 'node:stream/promises';
import { Readable, Writable } from 'node:stream';
import { closeServer, get, listen, startMesh, type Mesh } from './sidecar-proxy-helpers.js';

let app: http.Server;
let mesh: Mesh;
let appConnections = 0;
let appPort = 0;
const seen: http.IncomingHttpHeaders[] = [];

before(async () => {
  app = http.createServer((req, res) => {
    seen.push(req.headers);
    if (req.url === '/echo-body') {
      // Streams the body back as it arrives, counting it: nothing is buffered on either side.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      req.pipe(res);
      return;
    }
    if (req.url?.startsWith('/download/')) {
      const total = Number(req.url.slice('/download/'.length));
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 7);
      let sent = 0;
      const pump = (): void => {
        while (sent < total) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    res.setHeader('x-seen-url', req.url ?? '');
    res.end(`hello ${req.method} ${req.url}`);
  });
  app.on('connection', () => appConnections++);
  app.on('checkContinue', (req, res) => {
    seen.push(req.headers);
    res.writeContinue();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => res.end(`continued: ${Buffer.concat(chunks).toString()}`));
  });
  appPort = await listen(app);
  mesh = await startMesh(appPort, 'http1');
});

after(async () => {
  await mesh.close();
  await closeServer(app);
});

test('routes by Host through two proxies and adds the forwarding headers', async () => {
  seen.length = 0;
  const res = await get(mesh.port, '/a?x=1', {
    headers: {
      host: 'svc:8080',
      connection: 'keep-alive, x-private',
      'x-private': 'secret',
      'keep-alive': 'timeout=5',
    },
  });
  assert.equal(res.status, 200);
  assert.equal(res.body, 'hello GET /a?x=1');
  const h = seen[0]!;
  assert.equal(h.host, 'svc:8080');
  assert.equal(h['x-private'], undefined, 'a header named in Connection is hop-by-hop');
  assert.equal(h['keep-alive'], undefined);
  assert.equal(h['x-forwarded-for'], '127.0.0.1, 127.0.0.1', 'each hop appends its client');
  assert.equal(h['x-forwarded-proto'], 'http');
  assert.match(String(h['x-request-id']), /^[0-9a-f-]{36}$/);
  assert.equal(res.headers['x-request-id'], undefined, 'the request id is not invented on responses');
});

test('x-forwarded-proto is the connection scheme, not what the client claims', async () => {
  seen.length = 0;
  const res = await get(mesh.port, 'https://svc:8080/claims-tls', {
    headers: { 'x-forwarded-proto': 'https' },
  });
  assert.equal(res.status, 200);
  assert.equal(seen[0]!['x-forwarded-proto'], 'http');
});

test('a request id from the client is kept', async () => {
  seen.length = 0;
  await get(mesh.port, '/', { headers: { 'x-request-id': 'abc-123' } });
  assert.equal(seen[0]!['x-request-id'], 'abc-123');
});

test('absolute-form request (HTTP_PROXY clients) is routed by its authority and sent in origin-form', async () => {
  const res = await get(mesh.port, 'http://svc:8080/abs?q=2', { headers: { host: 'ignored.example' } });
  assert.equal(res.status, 200);
  assert.equal(res.headers['x-seen-url'], '/abs?q=2');
});

test('keep-alive: 30 sequential requests reuse one connection at every hop', async () => {
  const before = appConnections;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const clientSockets = new Set<unknown>();
  try {
    for (let i = 0; i < 30; i++) {
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = http.get(
          { host: '127.0.0.1', port: mesh.port, path: `/k${i}`, headers: { host: 'svc' }, agent },
          resolve,
        );
        req.on('socket', (s) => clientSockets.add(s));
        req.on('error', reject);
      });
      res.resume();
      await once(res, 'end');
    }
  } finally {
    agent.destroy();
  }
  assert.equal(clientSockets.size, 1, 'client → outbound proxy: one connection');
  assert.ok(appConnections - before <= 1, `inbound proxy → app: ${appConnections - before} new connections`);
  const svc = mesh.outbound.stats().clusters.find((c) => c.name === 'outbound|svc')!;
  assert.ok(svc.totalRequests >= 30);
  assert.equal(svc.activeRequests, 0);
});

test('64 MiB chunked upload and 64 MiB download stream through two proxies in bounded memory', async () => {
  // The proxies run in their own process so that their memory, not the test's, is measured.
  const child = fork(fileURLToPath(new URL('./sidecar-proxy-child.js', import.meta.url)), [String(appPort)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    const [{ port }] = (await once(child, 'message')) as [{ port: number }];
    const rss = async (): Promise<number> => {
      child.send('rss');
      const [m] = (await once(child, 'message')) as [{ rss: number }];
      return m.rss;
    };
    // Warm up pools, buffers and the JIT, then take the baseline.
    await upload(port, 4 * MiB);
    await download(port, 4 * MiB);
    const rss0 = await rss();
    let peak = rss0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await rss());
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    const size = Number(process.env.WEFT_TEST_STREAM_MIB ?? 64) * MiB;
    try {
      assert.equal(await upload(port, size), size, 'the whole upload was echoed back');
      assert.equal(await download(port, size), size);
    } finally {
      sampling = false;
      await sampler;
    }
    const growthMiB = (peak - rss0) / MiB;
    console.log(
      `# proxy process RSS: baseline ${(rss0 / MiB).toFixed(1)} MiB, peak growth ${growthMiB.toFixed(1)} MiB while streaming ${size / MiB} MiB each way`,
    );
    // Buffering a body in either proxy would add at least its size (64 MiB).
    assert.ok(growthMiB < 32, `RSS grew ${growthMiB.toFixed(1)} MiB`);
  } finally {
    child.send('stop');
    await once(child, 'exit');
  }
});

const MiB = 1024 * 1024;

/** POSTs `size` bytes chunked to /echo-body; resolves with the number of bytes echoed back. */
function upload(port: number, size: number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024, 1);
  return new Promise((resolve, reject) => {
    let echoed = 0;
    const req = http.request(
      { host: '127.0.0.1', port, path: '/echo-body', method: 'POST', headers: { host: 'svc' }, agent: false },
      (res) => {
        assert.equal(res.headers['transfer-encoding'], 'chunked');
        res.on('data', (c: Buffer) => (echoed += c.length));
        res.on('end', () => resolve(echoed));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    let sent = 0;
    pipeline(
      Readable.from(
        (function* () {
          while (sent < size) {
            sent += chunk.length;
            yield chunk;
          }
        })(),
      ),
      req,
    ).catch(reject);
  });
}

function download(port: number, size: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let got = 0;
    http
      .get(
        { host: '127.0.0.1', port, path: `/download/${size}`, headers: { host: 'svc' }, agent: false },
        (res) => {
          pipeline(
            res,
            new Writable({
              write(c: Buffer, _e, cb) {
                got += c.length;
                cb();
              },
            }),
          ).then(() => resolve(got), reject);
        },
      )
      .on('error', reject);
  });
}

test('Expect: 100-continue is forwarded and the interim 100 relayed back', async () => {
  seen.length = 0;
  const res = await new Promise<{ status: number; body: string; continued: boolean }>((resolve, reject) => {
    let continued = false;
    const req = http.request(
      {
        host: '127.0.0.1',
        port: mesh.port,
        path: '/upload',
        method: 'PUT',
        headers: { host: 'svc', expect: '100-continue', 'content-length': '5' },
        agent: false,
      },
      (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () =>
          resolve({ status: r.statusCode ?? 0, body: Buffer.concat(chunks).toString(), continued }),
        );
      },
    );
    req.on('continue', () => {
      continued = true;
      req.end('hello');
    });
    req.on('error', reject);
  });
  assert.equal(res.continued, true);
  assert.equal(res.status, 200);
  assert.equal(res.body, 'continued: hello');
  assert.equal(seen[0]!.expect, '100-continue', 'the app saw the expectation');
});
