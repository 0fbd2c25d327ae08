// Integration: an admin client certificate as the alternative to the admin token. `weft cert
// request` buys an SVID for spiffe://weft.local/ns/weft-system/sa/weft-admin with a join token
// (key made by the CLI, written 0600); with it the CLI may change anything through the control
// plane's TLS API, without the admin token. Another identity's certificate is a workload there
// (403 for admin work), no certificate is a 401 saying how, and the CLI refuses an https:// server
// it has no trust bundle for.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import {
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { RunningControlPlane } from '../../src/control-plane/control-plane.js';
import { uriSans } from '../../src/ca/spiffe-id.js';
import { apiFetch, runWeft, startInProcessControlPlane, tempDir } from '../helpers/weft-process.js';
import { makeTestCa } from '../unit/ca/ca-fixtures.js';

let cp: RunningControlPlane;
let dir: string;

before(async () => {
  cp = await startInProcessControlPlane();
  dir = tempDir();
});
after(() => cp?.close());

/** A token file for a service account, made with the admin token. */
async function tokenFile(serviceAccount: string, namespace: string): Promise<string> {
  const res = await apiFetch(`${cp.apiUrl}/api/v1/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ serviceAccount, namespace }),
  });
  assert.equal(res.status, 200);
  const file = join(dir, `${namespace}-${serviceAccount}.token`);
  writeFileSync(file, ((await res.json()) as { token: string }).token, { mode: 0o600 });
  return file;
}

/** `weft cert request` into its own folder; returns the folder. */
async function certFor(serviceAccount: string, namespace: string): Promise<string> {
  const out = join(dir, `${namespace}-${serviceAccount}`);
  const r = await runWeft(
    [
      'cert',
      'request',
      '--service-account',
      serviceAccount,
      '-n',
      namespace,
      '--token-file',
      await tokenFile(serviceAccount, namespace),
      '--out-dir',
      out,
    ],
    { server: cp.apiUrl, adminToken: null },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^key: ${join(out, 'key.pem')}$`, 'm'));
  return out;
}

/** The CLI against the TLS API with `certDir`'s certificate (or none), never an admin token. */
function overTls(
  args: string[],
  certDir: string,
  withCert = true,
  input?: string,
): ReturnType<typeof runWeft> {
  return runWeft(
    [
      '--server',
      cp.workloadApiUrl,
      '--certificate-authority',
      join(certDir, 'bundle.pem'),
      ...(withCert
        ? ['--client-certificate', join(certDir, 'cert.pem'), '--client-key', join(certDir, 'key.pem')]
        : []),
      ...args,
    ],
    { adminToken: null, ...(input === undefined ? {} : { input }) },
  );
}

const WORKLOAD = `apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: { name: by-cert, labels: { app: by-cert } }
spec: { address: 127.0.0.1, ports: [{ name: http, port: 9100, protocol: HTTP }] }
`;

test('weft cert request writes a 0600 key and an admin SVID; with it the CLI applies over TLS without the token', async () => {
  const admin = await certFor('weft-admin', 'weft-system');
  assert.equal(statSync(join(admin, 'key.pem')).mode & 0o777, 0o600);
  const cert = new X509Certificate(readFileSync(join(admin, 'cert.pem')));
  assert.deepEqual(uriSans(cert), ['spiffe://weft.local/ns/weft-system/sa/weft-admin']);

  const applied = await overTls(['apply', '-f', '-'], admin, true, WORKLOAD);
  assert.equal(applied.code, 0, applied.stderr);
  assert.match(applied.stdout, /^workload\/by-cert created$/m);
  const tokens = await overTls(['token', 'list', '-o', 'json'], admin);
  assert.equal(tokens.code, 0, tokens.stderr);
  assert.ok(Array.isArray(JSON.parse(tokens.stdout)));
});

test("another identity's certificate is a workload on the TLS API: admin work is 403", async () => {
  const ops = await certFor('ops', 'default');
  const r = await overTls(['apply', '-f', '-'], ops, true, WORKLOAD.replace('by-cert', 'by-ops'));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /spiffe:\/\/weft\.local\/ns\/default\/sa\/ops may not/);
  const list = await overTls(['token', 'list'], ops);
  assert.equal(list.code, 1);
  assert.match(list.stderr, /may not manage join tokens/);
});

test('no certificate on the TLS API is a 401 saying how; no trust bundle for https:// is refused by the CLI', async () => {
  const admin = join(dir, 'weft-system-weft-admin');
  const r = await overTls(['token', 'list'], admin, false);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /admin token/);
  const bare = await runWeft(['--server', cp.workloadApiUrl, 'get', 'workloads'], { adminToken: null });
  assert.equal(bare.code, 1);
  assert.match(bare.stderr, /TLS API: give --certificate-authority FILE/);
  const half = await runWeft(
    [
      '--server',
      cp.workloadApiUrl,
      '--certificate-authority',
      join(admin, 'bundle.pem'),
      '--client-certificate',
      join(admin, 'cert.pem'),
      'get',
      'workloads',
    ],
    { adminToken: null },
  );
  assert.equal(half.code, 1);
  assert.match(half.stderr, /--client-certificate and --client-key go together/);
});

test('a certificate from another CA on the TLS API is a 401 saying so, even one naming the admin identity', async () => {
  const root = await makeTestCa({ name: 'Elsewhere Root' });
  const impostor = await makeTestCa({
    name: 'impostor',
    issuer: root,
    ca: false,
    spiffeId: 'spiffe://weft.local/ns/weft-system/sa/weft-admin',
  });
  const foreign = join(dir, 'foreign');
  mkdirSync(foreign, { recursive: true });
  writeFileSync(join(foreign, 'cert.pem'), impostor.certificatePem);
  writeFileSync(join(foreign, 'key.pem'), impostor.privateKeyPem, { mode: 0o600 });
  writeFileSync(join(foreign, 'bundle.pem'), readFileSync(join(dir, 'weft-system-weft-admin', 'bundle.pem')));
  const r = await overTls(['get', 'workloads'], foreign);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /the client certificate was not accepted \(\w+/);
});

test('--admin-spiffe-id must name an identity of the trust domain: the control plane refuses to start otherwise', async () => {
  const r = await runWeft(
    [
      'control-plane',
      '--data-dir',
      join(dir, 'refused-cp'),
      '--api-addr',
      '127.0.0.1:0',
      '--xds-addr',
      '127.0.0.1:0',
      '--admin-spiffe-id',
      'spiffe://elsewhere.example/ns/ops/sa/root',
    ],
    { adminToken: null },
  );
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /--admin-spiffe-id spiffe:\/\/elsewhere\.example\/ns\/ops\/sa\/root: must be a SPIFFE ID of trust domain weft\.local/,
  );
});

test('cert request replaces what is in the way (a planted symbolic link, a loose mode) instead of writing through it', async () => {
  const out = join(dir, 'planted');
  mkdirSync(out, { recursive: true });
  const elsewhere = join(dir, 'elsewhere.pem');
  writeFileSync(elsewhere, 'untouched\n', { mode: 0o644 });
  symlinkSync(elsewhere, join(out, 'key.pem'));
  writeFileSync(join(out, 'cert.pem'), 'old\n', { mode: 0o666 });
  const r = await runWeft(
    ['cert', 'request', '--token-file', await tokenFile('weft-admin', 'weft-system'), '--out-dir', out],
    { server: cp.apiUrl, adminToken: null },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(elsewhere, 'utf8'), 'untouched\n');
  const key = lstatSync(join(out, 'key.pem'));
  assert.ok(key.isFile() && !key.isSymbolicLink());
  assert.equal(key.mode & 0o777, 0o600);
  assert.match(readFileSync(join(out, 'cert.pem'), 'utf8'), /BEGIN CERTIFICATE/);
  assert.deepEqual(readdirSync(out).sort(), ['bundle.pem', 'cert.pem', 'key.pem']);
});
