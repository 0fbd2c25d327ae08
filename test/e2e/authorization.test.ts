// End to end: authorization through real `weft` processes. A control plane, a client-only
// sidecar and the sidecar of service `be` in front of an HTTP app; `weft apply` of an
// AuthorizationPolicy denies within 2 s (403 naming the policy, counted on the admin /stats),
// and `weft delete` restores access within 2 s. Callers reach be over mutual TLS, so identity
// rules see the verified SPIFFE ID of the calling sidecar: an ALLOW for one service account lets
// it in and keeps another out. Sidecars normalize paths (the mesh default, MERGE_SLASHES): a DENY
// on /admin holds against `/./admin`, `//admin`, `/%61dmin` and the rest, and the app gets the
// normalized path with the query as sent; a MeshConfig with normalization NONE turns it off.
// TCP: an ALLOW for one caller's SPIFFE ID pipes its connections and closes another's at accept.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import {
  eventually,
  freePort,
  runWeft,
  startControlPlane,
  tempDir,
  type ControlPlaneProcess,
} from '../helpers/weft-process.js';
import { startSidecar, startSidecarPair, type SidecarProcess } from '../helpers/sidecar-process.js';

let cp: ControlPlaneProcess;
let client: SidecarProcess;
let be: SidecarProcess;
let app: http.Server;

before(async () => {
  app = http.createServer((req, res) => res.end(`be ${req.method} ${req.url}`));
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  const appPort = (app.address() as { port: number }).port;
  cp = await startControlPlane({ dataDir: tempDir() });
  ({ client, server: be } = await startSidecarPair(cp.apiUrl, { client: 'client', server: 'be' }, appPort));
});

after(async () => {
  await be?.stop();
  await client?.stop();
  await cp?.stop();
  app?.closeAllConnections();
  app?.close();
});

function call(
  method: string,
  path: string,
  from: SidecarProcess = client,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: from.outbound.host,
        port: from.outbound.port,
        method,
        path,
        headers: { host: 'be' },
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function stats(): Promise<{
  rbac: { allowed: number; denied: number; policies: Array<{ policy: string; denied: number }> };
}> {
  const res = await fetch(`http://${be.admin.host}:${be.admin.port}/stats`);
  return (await res.json()) as Awaited<ReturnType<typeof stats>>;
}

const POLICY = `apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: { name: be-deny-admin }
spec:
  targetRef: { kind: Service, name: be }
  action: DENY
  rules:
    - to: [{ methods: [POST], paths: ['/admin/*'] }]
`;

test('applying a DENY policy denies within 2 s, naming it; deleting it restores access within 2 s', async () => {
  assert.equal((await call('POST', '/admin/reset')).status, 200);

  const applied = await runWeft(['apply', '-f', '-'], { server: cp.apiUrl, input: POLICY });
  assert.equal(applied.code, 0, applied.stderr);
  const denied = await eventually(
    'the policy to deny POST /admin/reset',
    async () => {
      const a = await call('POST', '/admin/reset');
      return a.status === 403 ? a : undefined;
    },
    2_000,
  );
  assert.equal(denied.body, 'RBAC: access denied by AuthorizationPolicy/default/be-deny-admin\n');
  // Other requests still pass: a DENY policy alone does not turn on default deny.
  assert.equal((await call('GET', '/admin/reset')).status, 200);
  assert.equal((await call('POST', '/api')).status, 200);
  const s = await stats();
  assert.ok(s.rbac.denied >= 1);
  assert.ok(
    s.rbac.policies.some((p) => p.policy === 'AuthorizationPolicy/default/be-deny-admin' && p.denied >= 1),
  );

  const deleted = await runWeft(['delete', 'authorizationpolicy', 'be-deny-admin'], { server: cp.apiUrl });
  assert.equal(deleted.code, 0, deleted.stderr);
  await eventually(
    'access to be restored',
    async () => (await call('POST', '/admin/reset')).status === 200,
    2_000,
  );
});

test('an ALLOW policy turns on default deny for everything it does not allow', async () => {
  const allow = `apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: { name: be-allow-reads }
spec:
  targetRef: { kind: Service, name: be }
  rules:
    - to: [{ methods: [GET, HEAD] }]
`;
  const applied = await runWeft(['apply', '-f', '-'], { server: cp.apiUrl, input: allow });
  assert.equal(applied.code, 0, applied.stderr);
  try {
    const denied = await eventually(
      'default deny for DELETE',
      async () => {
        const a = await call('DELETE', '/x');
        return a.status === 403 ? a : undefined;
      },
      2_000,
    );
    assert.equal(
      denied.body,
      'RBAC: access denied: no ALLOW policy matched for Service/default/be (ALLOW policies: AuthorizationPolicy/default/be-allow-reads)\n',
    );
    assert.equal((await call('GET', '/x')).status, 200);
  } finally {
    await runWeft(['delete', 'authorizationpolicy', 'be-allow-reads'], { server: cp.apiUrl });
  }
});

test('an ALLOW for one caller identity: that sidecar gets 200, another service account 403', async () => {
  const other = await startSidecar({ service: 'other', controlPlane: cp.apiUrl });
  const policy = `apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: { name: be-allow-client }
spec:
  targetRef: { kind: Service, name: be }
  rules:
    - from: [{ principals: ["spiffe://weft.local/ns/default/sa/client"] }]
`;
  try {
    await eventually(
      'the other sidecar to reach be',
      async () => (await call('GET', '/who', other)).status === 200,
      10_000,
    );
    const applied = await runWeft(['apply', '-f', '-'], { server: cp.apiUrl, input: policy });
    assert.equal(applied.code, 0, applied.stderr);
    const denied = await eventually(
      'the other service account denied',
      async () => {
        const a = await call('GET', '/who', other);
        return a.status === 403 ? a : undefined;
      },
      2_000,
    );
    assert.match(denied.body, /no ALLOW policy matched for Service\/default\/be/);
    assert.equal((await call('GET', '/who')).status, 200, 'the allowed identity still gets in');
  } finally {
    await runWeft(['delete', 'authorizationpolicy', 'be-allow-client'], { server: cp.apiUrl });
    await other.stop();
  }
});

test('a DENY on /admin holds against every other spelling of the path; the app gets it normalized', async () => {
  const policy = `apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: { name: be-deny-admin-paths }
spec:
  targetRef: { kind: Service, name: be }
  action: DENY
  rules:
    - to: [{ paths: ['/admin', '/admin/*'] }]
`;
  const applied = await runWeft(['apply', '-f', '-'], { server: cp.apiUrl, input: policy });
  assert.equal(applied.code, 0, applied.stderr);
  try {
    await eventually(
      'the policy to deny GET /admin',
      async () => (await call('GET', '/admin')).status === 403,
      2_000,
    );
    for (const path of [
      '/./admin',
      '//admin',
      '/x/../admin',
      '/%61dmin',
      '/%2e/admin',
      '/%2E%2E/admin/users',
      '/admin/.',
      '/\\admin',
      '/public/..;/admin',
    ]) {
      const a = await call('GET', path);
      assert.equal(a.status, 403, path);
      assert.equal(a.body, 'RBAC: access denied by AuthorizationPolicy/default/be-deny-admin-paths\n', path);
    }
    const ok = await call('GET', '/x/./a//b/../c%7e?q=/../%2F&r=//');
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'be GET /x/a/c~?q=/../%2F&r=//');
    const bad = await call('GET', '/a%zz');
    assert.equal(bad.status, 400);
    assert.match(bad.body, /^bad request: malformed percent-encoding "%zz"/);

    // A MeshConfig with normalization NONE turns it off in both sidecars: the spelling the
    // default folds into /admin now reaches the app as sent, which is the hole it closes.
    const none = [
      'apiVersion: weft.dev/v1alpha1',
      'kind: MeshConfig',
      'metadata: { name: default, namespace: weft-system }',
      'spec: { pathNormalization: { normalization: NONE } }',
    ].join('\n');
    const set = await runWeft(['apply', '-f', '-'], { server: cp.apiUrl, input: none });
    assert.equal(set.code, 0, set.stderr);
    const open = await eventually(
      'NONE to let /./admin through',
      async () => {
        const a = await call('GET', '/./admin');
        return a.status === 200 ? a : undefined;
      },
      5_000,
    );
    assert.equal(open.body, 'be GET /./admin');
    const back = await runWeft(['delete', 'meshconfig', 'default', '-n', 'weft-system'], {
      server: cp.apiUrl,
    });
    assert.equal(back.code, 0, back.stderr);
    await eventually(
      'the default normalization back',
      async () => (await call('GET', '/./admin')).status === 403,
      5_000,
    );
  } finally {
    await runWeft(['delete', 'meshconfig', 'default', '-n', 'weft-system'], { server: cp.apiUrl });
    await runWeft(['delete', 'authorizationpolicy', 'be-deny-admin-paths'], { server: cp.apiUrl });
  }
});

/** Sends `text` on a new TCP connection to `port` and resolves with all it got back until close. */
function tcpRoundTrip(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      got += d;
      if (got.length >= text.length) s.end();
    });
    s.on('connect', () => s.write(text));
    s.on('error', () => {});
    s.on('close', () => resolve(got));
  });
}

test('TCP over mutual TLS: an ALLOW for one caller identity pipes its connections; another service account is closed at accept', async (t) => {
  const echo = net.createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  t.after(() => echo.close());
  let accepted = 0;
  echo.on('connection', () => accepted++);
  const db = await startSidecar({
    service: 'db',
    appPort: (echo.address() as net.AddressInfo).port,
    protocol: 'TCP',
    controlPlane: cp.apiUrl,
  });
  t.after(() => db.stop());
  const servicePort = db.inbound!.port;
  const [allowedPort, otherPort] = [await freePort(), await freePort()];
  const [allowed, other] = await Promise.all([
    startSidecar({
      service: 'reporting',
      controlPlane: cp.apiUrl,
      extra: ['--upstream', `db:${servicePort}=${allowedPort}`],
    }),
    startSidecar({
      service: 'intruder',
      controlPlane: cp.apiUrl,
      extra: ['--upstream', `db:${servicePort}=${otherPort}`],
    }),
  ]);
  t.after(() => Promise.all([allowed.stop(), other.stop()]));
  await eventually(
    'both callers to reach db',
    async () =>
      (await tcpRoundTrip(allowedPort, 'ping')) === 'ping' &&
      (await tcpRoundTrip(otherPort, 'ping')) === 'ping',
    10_000,
  );

  const policy = `apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: { name: db-allow-reporting }
spec:
  targetRef: { kind: Service, name: db }
  rules:
    - from: [{ principals: ["spiffe://weft.local/ns/default/sa/reporting"] }]
`;
  const applied = await runWeft(['apply', '-f', '-'], { server: cp.apiUrl, input: policy });
  assert.equal(applied.code, 0, applied.stderr);
  t.after(() => runWeft(['delete', 'authorizationpolicy', 'db-allow-reporting'], { server: cp.apiUrl }));
  await eventually(
    'the intruder closed at accept',
    async () => (await tcpRoundTrip(otherPort, 'ping')) === '',
    2_000,
  );
  const before = accepted;
  for (let i = 0; i < 3; i++) assert.equal(await tcpRoundTrip(otherPort, 'secret'), '');
  assert.equal(accepted, before, 'a denied connection never reaches the app');
  assert.equal(
    await tcpRoundTrip(allowedPort, 'report'),
    'report',
    'the allowed identity still gets through',
  );
  assert.equal(accepted, before + 1);
  const res = await fetch(`http://${db.admin.host}:${db.admin.port}/stats`);
  const s = (await res.json()) as {
    rbac: { denied: number; policies: Array<{ policy: string; denied: number }> };
  };
  assert.ok(s.rbac.denied >= 4, JSON.stringify(s.rbac));
});
