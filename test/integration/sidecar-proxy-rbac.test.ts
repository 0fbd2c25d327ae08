// Integration: authorization enforced by a real proxy, with the config made the way a sidecar
// gets it — AuthorizationPolicy bindings compiled for the workload, sent through the codec,
// translated — and requests over real sockets: allowed 200, denied 403 naming the policy, DENY
// beating ALLOW, default deny, headers and methods, TCP closed at accept, counters in stats.
// Callers here are plaintext (no verified identity), so principal and namespace rules must
// never match them; identity-based allows need mutual TLS and are tested with it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import type { AuthorizationBinding } from '../../src/registry/model.js';
import type { Proxy } from '../../src/sidecar/proxy/proxy.js';
import { compiledSidecarConfig as sidecarConfig } from './sidecar-compiled-config.js';
import { closeServer, get, listen, newProxy, portOf } from './sidecar-proxy-helpers.js';

function binding(
  name: string,
  action: 'ALLOW' | 'DENY',
  rules: AuthorizationBinding['rules'],
): AuthorizationBinding {
  return {
    source: { kind: 'AuthorizationPolicy', namespace: 'default', name },
    target: { namespace: 'default', name: 'be' },
    action,
    rules,
  };
}

let app: http.Server;
let appPort: number;
let proxy: Proxy;
let port: number;

before(async () => {
  app = http.createServer((req, res) => res.end(`app ${req.method} ${req.url}`));
  appPort = await listen(app);
  proxy = newProxy();
});

after(async () => {
  await proxy.close();
  await closeServer(app);
});

async function apply(policies: AuthorizationBinding[]): Promise<void> {
  await proxy.apply(sidecarConfig(appPort, 'HTTP', policies));
  port = portOf(proxy, 'inbound|0');
}

test('without policies everything passes', async () => {
  await apply([]);
  const a = await get(port, '/anything', { method: 'DELETE' });
  assert.equal(a.status, 200);
  assert.equal(a.body, 'app DELETE /anything');
});

test('ALLOW by method and path: allowed 200, anything else 403 naming the service and the policies', async () => {
  await apply([
    binding('be-allow-get-api', 'ALLOW', [{ to: [{ methods: ['GET'], paths: ['/api/*', '/healthz'] }] }]),
  ]);
  assert.equal((await get(port, '/api/users?page=2')).status, 200);
  assert.equal((await get(port, '/healthz')).status, 200);
  for (const [method, path] of [
    ['POST', '/api/users'],
    ['GET', '/healthz/x'],
    ['GET', '/apix'],
  ] as const) {
    const a = await get(port, path, { method });
    assert.equal(a.status, 403, `${method} ${path}`);
    assert.equal(a.headers['x-weft-error'], 'WEFT_E_PROXY_RBAC_DENIED');
    assert.equal(
      a.body,
      'RBAC: access denied: no ALLOW policy matched for Service/default/be (ALLOW policies: AuthorizationPolicy/default/be-allow-get-api)\n',
    );
  }
});

test('a DENY on one path beats an ALLOW of everything, and names itself', async () => {
  await apply([
    binding('be-allow-all', 'ALLOW', [{}]),
    binding('be-deny-admin', 'DENY', [{ to: [{ paths: ['/api/admin/*'] }] }]),
  ]);
  assert.equal((await get(port, '/api/users')).status, 200);
  const a = await get(port, '/api/admin/reset');
  assert.equal(a.status, 403);
  assert.equal(a.body, 'RBAC: access denied by AuthorizationPolicy/default/be-deny-admin\n');
  assert.ok(a.headers['x-request-id'], 'the 403 carries the request id');
});

test('headers: exact value, prefix and presence; notPaths', async () => {
  await apply([
    binding('be-allow-sre', 'ALLOW', [
      {
        to: [
          { headers: [{ name: 'X-Team', prefix: 'sre-' }, { name: 'x-ticket' }], notPaths: ['/private/*'] },
        ],
      },
      { to: [{ headers: [{ name: 'x-role', value: 'admin' }] }] },
    ]),
  ]);
  assert.equal((await get(port, '/x', { headers: { 'x-team': 'sre-eu', 'x-ticket': '1' } })).status, 200);
  assert.equal((await get(port, '/x', { headers: { 'x-team': 'sre-eu' } })).status, 403);
  assert.equal((await get(port, '/x', { headers: { 'x-team': 'dev', 'x-ticket': '1' } })).status, 403);
  assert.equal(
    (await get(port, '/private/a', { headers: { 'x-team': 'sre-eu', 'x-ticket': '1' } })).status,
    403,
  );
  assert.equal((await get(port, '/private/a', { headers: { 'x-role': 'admin' } })).status, 200);
  assert.equal((await get(port, '/private/a', { headers: { 'x-role': 'admins' } })).status, 403);
  // A header the client nominates as hop-by-hop is gone before authorization looks.
  const a = await get(port, '/x', { headers: { 'x-role': 'admin', connection: 'x-role' } });
  assert.equal(a.status, 403);
});

test('principal and namespace rules never match a plaintext caller (fail closed)', async () => {
  await apply([
    binding('be-allow-fe', 'ALLOW', [
      { from: [{ principals: ['spiffe://weft.local/ns/default/sa/fe'] }] },
      { from: [{ namespaces: ['default'] }] },
      { from: [{ principals: ['*'] }] },
    ]),
  ]);
  const a = await get(port, '/');
  assert.equal(a.status, 403);
  assert.match(a.body, /no ALLOW policy matched for Service\/default\/be/);
});

test('an ALLOW policy with no rules denies everything; deleting it restores access', async () => {
  await apply([binding('be-allow-nothing', 'ALLOW', [])]);
  assert.equal((await get(port, '/')).status, 403);
  await apply([]);
  assert.equal((await get(port, '/')).status, 200);
});

test("an SMI TrafficTarget on the workload's service account turns on default deny; its sources need mutual TLS", async () => {
  await apply([
    {
      source: { kind: 'TrafficTarget', namespace: 'default', name: 'be-from-fe' },
      target: { namespace: 'default', name: 'be', kind: 'ServiceAccount' },
      action: 'ALLOW',
      rules: [
        {
          from: [{ serviceAccounts: [{ namespace: 'default', name: 'fe' }] }],
          to: [{ pathRegex: '/api/.*' }],
        },
      ],
    },
  ]);
  const a = await get(port, '/api/x');
  assert.equal(a.status, 403);
  assert.equal(
    a.body,
    'RBAC: access denied: no ALLOW policy matched for Service/default/be,ServiceAccount/default/be (ALLOW policies: TrafficTarget/default/be-from-fe)\n',
  );
});

test('every decision is counted per policy and action', async () => {
  const before = proxy.rbac();
  await apply([
    binding('be-allow-all', 'ALLOW', [{}]),
    binding('be-deny-admin', 'DENY', [{ to: [{ paths: ['/admin'] }] }]),
  ]);
  await get(port, '/a');
  await get(port, '/admin');
  const after = proxy.rbac();
  assert.equal(after.allowed - before.allowed, 1);
  assert.equal(after.denied - before.denied, 1);
  const deny = after.policies.find((p) => p.policy === 'AuthorizationPolicy/default/be-deny-admin');
  assert.ok(deny && deny.action === 'DENY' && deny.denied >= 1);
});

/** Resolves with what the server said before closing, or rejects on error. */
function tcpExchange(p: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(p, '127.0.0.1');
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString()));
    s.on('connect', () => s.write(data));
    s.on('close', () => resolve(got));
    s.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? resolve(got) : reject(e)));
    setTimeout(() => s.end(), 300);
  });
}

test('TCP: a connection is closed at accept when denied, piped when allowed', async () => {
  const echo = net.createServer((s) => s.pipe(s));
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  const echoPort = (echo.address() as net.AddressInfo).port;
  let dialled = 0;
  echo.on('connection', () => dialled++);
  const tcp = newProxy();
  try {
    await tcp.apply(sidecarConfig(echoPort, 'TCP', []));
    const p = portOf(tcp, 'inbound|0');
    assert.equal(await tcpExchange(p, 'hello'), 'hello');
    await tcp.apply(
      sidecarConfig(echoPort, 'TCP', [binding('be-allow-fe', 'ALLOW', [{ from: [{ principals: ['*'] }] }])]),
    );
    const dialledBefore = dialled;
    assert.equal(await tcpExchange(p, 'hello'), '');
    assert.equal(dialled, dialledBefore, 'a denied connection never reaches the app');
    // An ALLOW rule about requests can never match a connection: fail closed.
    await tcp.apply(
      sidecarConfig(echoPort, 'TCP', [binding('be-allow-get', 'ALLOW', [{ to: [{ methods: ['GET'] }] }])]),
    );
    assert.equal(await tcpExchange(p, 'hello'), '');
    // A DENY rule about requests denies its callers outright on TCP.
    await tcp.apply(
      sidecarConfig(echoPort, 'TCP', [
        binding('be-allow-all', 'ALLOW', [{}]),
        binding('be-deny-get', 'DENY', [{ to: [{ methods: ['GET'] }] }]),
      ]),
    );
    assert.equal(await tcpExchange(p, 'hello'), '');
    await tcp.apply(sidecarConfig(echoPort, 'TCP', [binding('be-allow-all', 'ALLOW', [{}])]));
    assert.equal(await tcpExchange(p, 'hello'), 'hello');
    assert.ok(tcp.rbac().denied >= 3);
  } finally {
    await tcp.close();
    echo.close();
  }
});
