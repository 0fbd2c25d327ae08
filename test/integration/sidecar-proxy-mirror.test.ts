// Integration: request mirroring through a real proxy to real servers. The primary's answer goes
// to the client; a copy (same method, path, headers and body; authority with `-shadow`) goes to
// the mirror cluster, whose answer is dropped and whose slowness or absence never holds the
// client up.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { shadowAuthority } from '../../src/sidecar/proxy/mirror.js';
import type { Proxy } from '../../src/sidecar/proxy/proxy.js';
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
  runtimeConfig,
} from './sidecar-proxy-helpers.js';

interface Seen {
  method: string;
  url: string;
  host: string;
  requestId: string;
  bodySha: string;
  bytes: number;
}

function recordingServer(answer: (req: http.IncomingMessage, res: http.ServerResponse) => void): {
  server: http.Server;
  seen: Seen[];
  waiters: Array<() => void>;
} {
  const seen: Seen[] = [];
  const waiters: Array<() => void> = [];
  const server = http.createServer((req, res) => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
    });
    req.on('end', () => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        host: req.headers.host ?? '',
        requestId: String(req.headers['x-request-id'] ?? ''),
        bodySha: hash.digest('hex'),
        bytes,
      });
      for (const w of waiters.splice(0)) w();
      answer(req, res);
    });
  });
  return { server, seen, waiters };
}

const primary = recordingServer((req, res) => res.end(`primary ${req.method} ${req.url}`));
const mirror = recordingServer((req, res) => res.end('mirror answer, dropped'));
/** Answers nothing until the test ends: a mirror that hangs. */
const hanging = recordingServer(() => {});
let proxy: Proxy;
let port = 0;
const ports = { primary: 0, mirror: 0, hanging: 0 };

function configWith(mirrors: Array<{ cluster: string; fraction: number }>, version: string) {
  return runtimeConfig(
    [httpListener('outbound', 'outbound', 'outbound', port)],
    [
      {
        name: 'outbound',
        virtualHosts: [
          {
            name: 'svc',
            domains: ['svc', 'svc:8080'],
            routes: [forwardRoute('svc', 'primary', { mirrors }, prefixMatch())],
          },
        ],
      },
    ],
    [
      cluster('primary', 'http1', [endpoint(ports.primary)]),
      cluster('shadow', 'http1', [endpoint(ports.mirror)]),
      cluster('hanging', 'http1', [endpoint(ports.hanging)]),
      cluster('empty', 'http1', []),
    ],
    version,
  );
}

let version = 0;
async function mirrorTo(mirrors: Array<{ cluster: string; fraction: number }>): Promise<void> {
  await proxy.apply(configWith(mirrors, String(++version)));
  if (port === 0) port = portOf(proxy, 'outbound');
}

/** Resolves once `server` has seen `n` requests in all. */
function seenCount(s: { seen: Seen[]; waiters: Array<() => void> }, n: number): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (s.seen.length >= n) resolve();
      else s.waiters.push(check);
    };
    check();
  });
}

before(async () => {
  ports.primary = await listen(primary.server);
  ports.mirror = await listen(mirror.server);
  ports.hanging = await listen(hanging.server);
  proxy = newProxy();
  await mirrorTo([{ cluster: 'shadow', fraction: 1 }]);
});

after(async () => {
  await proxy.close();
  await Promise.all([closeServer(primary.server), closeServer(mirror.server), closeServer(hanging.server)]);
});

test('shadow authority: -shadow goes before the port, as Envoy does', () => {
  assert.equal(shadowAuthority('backend'), 'backend-shadow');
  assert.equal(shadowAuthority('backend:8080'), 'backend-shadow:8080');
  assert.equal(shadowAuthority('[::1]:80'), '[::1]-shadow:80');
  assert.equal(shadowAuthority('[::1]'), '[::1]-shadow');
});

test('a mirrored GET: the client gets the primary answer, the mirror a copy with a -shadow authority', async () => {
  await mirrorTo([{ cluster: 'shadow', fraction: 1 }]);
  primary.seen.length = 0;
  mirror.seen.length = 0;
  const res = await get(port, '/a?x=1', { headers: { host: 'svc:8080' } });
  assert.equal(res.status, 200);
  assert.equal(res.body, 'primary GET /a?x=1');
  await seenCount(mirror, 1);
  const [p, m] = [primary.seen[0]!, mirror.seen[0]!];
  assert.deepEqual([m.method, m.url, m.host], ['GET', '/a?x=1', 'svc-shadow:8080']);
  assert.equal(p.host, 'svc:8080');
  assert.ok(p.requestId !== '' && m.requestId === p.requestId, 'the copy carries the same request id');
});

test('a mirrored POST: the copy carries the same body, byte for byte', async () => {
  await mirrorTo([{ cluster: 'shadow', fraction: 1 }]);
  primary.seen.length = 0;
  mirror.seen.length = 0;
  const body = randomBytes(384 * 1024).toString('base64');
  const res = await get(port, '/upload', { method: 'POST', body });
  assert.equal(res.status, 200);
  await seenCount(mirror, 1);
  const sha = createHash('sha256').update(body).digest('hex');
  assert.equal(primary.seen[0]!.bodySha, sha);
  assert.equal(mirror.seen[0]!.bytes, Buffer.byteLength(body));
  assert.equal(mirror.seen[0]!.bodySha, sha);
});

test('a mirror that never answers, or has no endpoint, holds no client request up', async () => {
  await mirrorTo([
    { cluster: 'hanging', fraction: 1 },
    { cluster: 'empty', fraction: 1 },
    { cluster: 'missing', fraction: 1 },
  ]);
  hanging.seen.length = 0;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  try {
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        get(port, `/slow-mirror/${i}`, { agent, method: 'POST', body: 'x' }),
      ),
    );
    assert.deepEqual(
      answers.map((a) => a.status),
      Array.from({ length: 20 }, () => 200),
    );
    await seenCount(hanging, 20);
    assert.ok(
      hanging.seen.every((s) => s.bytes === 1),
      'every copy reached the hanging mirror, which still has not answered',
    );
  } finally {
    agent.destroy();
  }
});

test('a fraction mirrors about that share of requests (0.25 of 800; binomial sd 12, tolerance ±60)', async () => {
  await mirrorTo([{ cluster: 'shadow', fraction: 0.25 }]);
  mirror.seen.length = 0;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  try {
    for (let i = 0; i < 800; i += 40) {
      await Promise.all(Array.from({ length: 40 }, (_, j) => get(port, `/f/${i + j}`, { agent })));
    }
    // Copies are fire and forget: one more request mirrored at fraction 1 marks the end.
    await mirrorTo([{ cluster: 'shadow', fraction: 1 }]);
    await get(port, '/marker', { agent });
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (mirror.seen.some((s) => s.url === '/marker')) resolve();
        else mirror.waiters.push(check);
      };
      check();
    });
  } finally {
    agent.destroy();
  }
  const copies = mirror.seen.filter((s) => s.url.startsWith('/f/')).length;
  assert.ok(copies >= 140 && copies <= 260, `${copies} of 800 mirrored at 0.25 (expected 200 ± 60)`);
});
