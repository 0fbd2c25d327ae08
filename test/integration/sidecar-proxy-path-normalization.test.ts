// Integration: path normalization closes the ways around a path policy. A DENY AuthorizationPolicy
// on /admin is compiled for the workload with the mesh's path normalization, sent through the
// Envoy codec and translated, as over xDS; then every spelling of /admin is sent over real
// sockets, HTTP/1.1, HTTP/2 and gRPC, to the inbound listener: all are denied, the app gets the
// normalized path and the query as sent, and what cannot be normalized is a 400. The MeshConfig
// modes are told apart (NONE leaves the hole open), the outbound listener normalizes too, and
// UNESCAPE_AND_REDIRECT answers 307.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type { AuthorizationBinding, PathNormalizationMode } from '../../src/registry/model.js';
import type { Proxy } from '../../src/sidecar/proxy/proxy.js';
import type { HttpListener } from '../../src/sidecar/runtime-config.js';
import { compiledSidecarConfig } from './sidecar-compiled-config.js';
import {
  closeServer,
  get,
  inboundConfig,
  listen,
  newProxy,
  portOf,
  rawExchange,
} from './sidecar-proxy-helpers.js';

const DENY_ADMIN: AuthorizationBinding = {
  source: { kind: 'AuthorizationPolicy', namespace: 'default', name: 'be-deny-admin' },
  target: { namespace: 'default', name: 'be' },
  action: 'DENY',
  // `/admin/` is another path than `/admin`: a policy on a subtree names both.
  rules: [{ to: [{ paths: ['/admin', '/admin/*'] }] }],
};
const DENIED = 'RBAC: access denied by AuthorizationPolicy/default/be-deny-admin\n';

/** Spellings of /admin (or a path under it) that an app normalizing paths would serve as such. */
const SPELLINGS = [
  '/admin',
  '/./admin',
  '//admin',
  '///admin/',
  '/x/../admin',
  '/x/y/../../admin/users',
  '/%61dmin',
  '/%61%64%6d%69%6E',
  '/%2e/admin',
  '/%2E%2E/admin',
  '/x/.%2e/admin',
  '/admin/.',
  '/admin/x/..',
  '/\\admin',
  '/x\\..\\admin',
  '/public/..;/admin',
  '/public/..;jsessionid=1/admin',
  '/../../admin',
];

let app: http.Server;
let appPort: number;
/** Every request target the app received, in order. */
const seen: string[] = [];
let proxy: Proxy;
let inbound: number;
let outbound: number;

before(async () => {
  app = http.createServer((req, res) => {
    seen.push(req.url ?? '');
    res.end(`app ${req.url}`);
  });
  appPort = await listen(app);
  proxy = newProxy();
});

after(async () => {
  await proxy.close();
  await closeServer(app);
});

async function apply(policies: AuthorizationBinding[], mode?: PathNormalizationMode): Promise<void> {
  await proxy.apply(compiledSidecarConfig(appPort, 'HTTP', policies, mode));
  inbound = portOf(proxy, 'inbound|0');
  outbound = portOf(proxy, 'outbound');
}

test('HTTP/1.1: a DENY on /admin holds against every spelling of it (the mesh default)', async () => {
  await apply([DENY_ADMIN]);
  const before = seen.length;
  for (const path of SPELLINGS) {
    const a = await get(inbound, path);
    assert.equal(a.status, 403, path);
    assert.equal(a.body, DENIED, path);
  }
  assert.equal(seen.length, before, 'no spelling reached the app');
  const ok = await get(inbound, '/public/x');
  assert.equal(ok.status, 200);
  assert.equal(ok.body, 'app /public/x');
  // A target that does not start with "/" is refused by the HTTP/1.1 parser before anything.
  const raw = await rawExchange(inbound, 'GET \\admin HTTP/1.1\r\nHost: be\r\nConnection: close\r\n\r\n');
  assert.match(raw, /^HTTP\/1\.1 400 /);
  assert.equal(seen.length, before + 1);
});

test('the app receives the normalized path, and the query exactly as sent', async () => {
  await apply([DENY_ADMIN]);
  const a = await get(inbound, '/x/./a//b/../c%7e/%2f%3a?q=/../%2F&r=%zz&s=//');
  assert.equal(a.status, 200);
  assert.equal(a.body, 'app /x/a/c~/%2F%3A?q=/../%2F&r=%zz&s=//');
  // The fast path: an ordinary path is forwarded as it came.
  assert.equal((await get(inbound, '/api/v1/users?id=7')).body, 'app /api/v1/users?id=7');
});

test('a path that cannot be normalized, or that has a fragment, is a 400 saying why', async () => {
  await apply([DENY_ADMIN]);
  const before = seen.length;
  const bad = await get(inbound, '/admin%zz');
  assert.equal(bad.status, 400);
  assert.equal(bad.headers['x-weft-error'], 'WEFT_E_PROXY_BAD_REQUEST');
  assert.equal(
    bad.body,
    'bad request: malformed percent-encoding "%zz" in the request path (a "%" must start %XX)\n',
  );
  assert.ok(bad.headers['x-request-id'], 'the 400 carries the request id');
  const nul = await get(inbound, '/admin%00');
  assert.equal(nul.status, 400);
  assert.equal(nul.body, 'bad request: the request path has an encoded NUL (%00)\n');
  const fragment = await get(inbound, '/admin#top');
  assert.equal(fragment.status, 400);
  assert.equal(
    fragment.body,
    'bad request: the request target has a fragment ("#…"), which a client must not send\n',
  );
  assert.equal(seen.length, before, 'none reached the app');
});

test('an Upgrade request is normalized before authorization too', async () => {
  await apply([DENY_ADMIN]);
  const raw = await rawExchange(
    inbound,
    'GET /x/../admin HTTP/1.1\r\nHost: be\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n',
  );
  assert.match(raw, /^HTTP\/1\.1 403 /);
  assert.ok(raw.endsWith(DENIED), raw);
});

interface H2Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
}

function h2Request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':authority': 'be', ...headers });
    let status = 0;
    let head: http2.IncomingHttpHeaders = {};
    let body = '';
    req.on('response', (h) => {
      status = Number(h[':status']);
      head = h;
    });
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => resolve({ status, headers: head, body }));
    req.on('error', reject);
    req.end();
  });
}

test('HTTP/2: the same spellings are denied, and the app gets the normalized path', async () => {
  await apply([DENY_ADMIN]);
  const session = http2.connect(`http://127.0.0.1:${inbound}`);
  try {
    for (const path of SPELLINGS) {
      const a = await h2Request(session, { ':path': path });
      assert.equal(a.status, 403, path);
      assert.equal(a.body, DENIED, path);
    }
    const ok = await h2Request(session, { ':path': '/x/%2E/y//z?q=/./' });
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'app /x/y/z?q=/./');
  } finally {
    session.close();
  }
});

test('gRPC: method paths are normalized; denials and refusals come as grpc-status', async () => {
  // A gRPC app (HTTP/2 only) that answers with the :path it was sent, in a header.
  const grpcApp = http2.createServer();
  grpcApp.on('stream', (stream, headers) => {
    stream.respond(
      { ':status': 200, 'content-type': 'application/grpc', 'x-path': String(headers[':path']) },
      { waitForTrailers: true },
    );
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end();
  });
  const grpcPort = await listen(grpcApp);
  const grpcProxy = newProxy();
  const session = await (async () => {
    await grpcProxy.apply(compiledSidecarConfig(grpcPort, 'GRPC', [DENY_ADMIN]));
    return http2.connect(`http://127.0.0.1:${portOf(grpcProxy, 'inbound|0')}`);
  })();
  const call = (path: string) =>
    h2Request(session, {
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
  try {
    const ok = await call('/weft.test.Echo/./Say');
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['x-path'], '/weft.test.Echo/Say');
    const denied = await call('/weft.test.Echo/../admin');
    assert.equal(denied.headers['grpc-status'], '7', 'PERMISSION_DENIED');
    assert.equal(decodeURIComponent(String(denied.headers['grpc-message'])), DENIED.trimEnd());
    const bad = await call('/weft.test.Echo/%zz');
    assert.equal(bad.headers['grpc-status'], '13', 'a 400 is INTERNAL to gRPC');
  } finally {
    session.close();
    await grpcProxy.close();
    await closeServer(grpcApp);
  }
});

test('the outbound listener normalizes too: the app sees one spelling whichever side it is on', async () => {
  await apply([DENY_ADMIN]);
  const a = await get(outbound, '/x/../y//%7Ez?q=/../', { headers: { host: 'be' } });
  assert.equal(a.status, 200);
  assert.equal(a.body, 'app /y/~z?q=/../');
});

test('MeshConfig: NONE leaves the hole open; DECODE_AND_MERGE_SLASHES also decodes %2F', async () => {
  // What the default closes: without normalization `/./admin` reaches the app, which may well
  // serve /admin for it.
  await apply([DENY_ADMIN], 'NONE');
  assert.equal((await get(inbound, '/./admin')).body, 'app /./admin');
  assert.equal((await get(inbound, '//admin')).body, 'app //admin');

  await apply([DENY_ADMIN], 'BASE');
  assert.equal((await get(inbound, '/./admin')).status, 403);
  assert.equal((await get(inbound, '//x')).body, 'app //x', 'BASE keeps double slashes');

  // Escaped slashes are kept by default: `%2F` is data inside a segment to most apps.
  await apply([DENY_ADMIN]);
  assert.equal((await get(inbound, '/public%2F..%2Fadmin')).body, 'app /public%2F..%2Fadmin');

  await apply([DENY_ADMIN], 'DECODE_AND_MERGE_SLASHES');
  const a = await get(inbound, '/public%2F..%2Fadmin');
  assert.equal(a.status, 403);
  assert.equal(a.body, DENIED);
  assert.equal((await get(inbound, '/a%2Fb%5Cc?x=%2F')).body, 'app /a/b/c?x=%2F');
});

test('UNESCAPE_AND_REDIRECT: a 307 to the unescaped path; gRPC, which cannot follow it, gets a 400', async () => {
  const config = inboundConfig(appPort, 'http1');
  const listener = config.listeners[0] as HttpListener;
  listener.pathNormalization = { normalize: true, mergeSlashes: true, escapedSlashes: 'unescapeAndRedirect' };
  const redirecting = newProxy();
  try {
    await redirecting.apply(config);
    const port = portOf(redirecting, 'inbound');
    const before = seen.length;
    const a = await get(port, '/a%2Fb/%2e%2e/c?x=%2F');
    assert.equal(a.status, 307);
    assert.equal(a.headers.location, '/a/c?x=%2F');
    assert.equal(seen.length, before);
    assert.equal((await get(port, '/a/c?x=%2F')).body, 'app /a/c?x=%2F', 'the redirect target is served');
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const g = await h2Request(session, {
        ':method': 'POST',
        ':path': '/pkg.Svc%2FMethod',
        'content-type': 'application/grpc',
      });
      assert.equal(g.status, 200);
      assert.equal(g.headers['grpc-status'], '13');
    } finally {
      session.close();
    }
  } finally {
    await redirecting.close();
  }
});
