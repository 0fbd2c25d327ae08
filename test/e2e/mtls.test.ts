// End to end: automatic mTLS between two real `weft sidecar` processes and a real control plane.
//   caller → client sidecar (outbound, plaintext on 127.0.0.1) ⇒ mTLS ⇒ upstream sidecar → app.
// Covered: the app sees x-forwarded-client-cert naming the caller's SPIFFE ID, and nothing the
// caller forged; STRICT refuses plaintext and TLS clients without a certificate (the real
// openssl s_client); a MeshConfig switching to PERMISSIVE lets plaintext in; a capture of the
// wire between the sidecars (tshark, when it can capture here) shows TLS and no request bytes.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { once } from 'node:events';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  eventually,
  runWeft,
  startControlPlane,
  tempDir,
  type ControlPlaneProcess,
} from '../helpers/weft-process.js';
import { startSidecarPair, type SidecarProcess } from '../helpers/sidecar-process.js';

let cp: ControlPlaneProcess;
let client: SidecarProcess;
let upstream: SidecarProcess;
let app: http.Server;
/** The request heads the app received, newest last. */
const seen: Array<{ path: string; headers: http.IncomingHttpHeaders }> = [];

before(async () => {
  cp = await startControlPlane({ dataDir: tempDir() });
  app = http.createServer((req, res) => {
    seen.push({ path: req.url ?? '', headers: req.headers });
    req.resume();
    res.end('hello from the app\n');
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  const appPort = (app.address() as net.AddressInfo).port;
  ({ client, server: upstream } = await startSidecarPair(
    cp.apiUrl,
    { client: 'caller', server: 'secured' },
    appPort,
  ));
});

after(async () => {
  await client?.stop();
  await upstream?.stop();
  await cp?.stop();
  app?.closeAllConnections();
  app?.close();
});

function viaMesh(
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: client.outbound.host,
        port: client.outbound.port,
        path,
        headers: { host: 'secured', ...headers },
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

/** Plaintext HTTP straight to the upstream sidecar's inbound port (no sidecar on our side). */
function plaintextToInbound(): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: upstream.inbound!.host, port: upstream.inbound!.port, path: '/plain', agent: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** openssl s_client with TLS 1.3 and no client certificate; what it printed. */
function opensslWithoutCertificate(): string {
  const r = spawnSync(
    'openssl',
    ['s_client', '-connect', `${upstream.inbound!.host}:${upstream.inbound!.port}`, '-tls1_3', '-ign_eof'],
    { input: 'GET /openssl HTTP/1.1\r\nhost: secured\r\nconnection: close\r\n\r\n', timeout: 10_000 },
  );
  return `${r.stdout.toString()}\n${r.stderr.toString()}`;
}

const tshark = spawnSync('tshark', ['--version']).status === 0;

test(
  'the wire between the sidecars carries TLS records, never the request',
  { skip: !tshark && 'tshark is not installed' },
  async () => {
    const file = join(tempDir('weft-capture-'), 'mtls.pcap');
    // -c: tshark stops by itself once it has 8 packets, so the test knows the capture holds
    // the requests' traffic whatever the machine's load (it sends until tshark is done).
    const capture = spawn(
      'tshark',
      ['-i', 'lo', '-c', '8', '-f', `tcp port ${upstream.inbound!.port}`, '-w', file],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    capture.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const done = once(capture, 'exit');
    let exited = false;
    void done.then(() => (exited = true));
    try {
      await eventually('tshark to start capturing', async () => err.includes('Capturing on'), 15_000);
      const secret = 'x-secret-value-4242';
      for (let i = 0; i < 50 && !exited; i++) {
        const r = await viaMesh('/very-private-path-1234', { 'x-secret': secret });
        assert.equal(r.status, 200);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(exited, `tshark captured fewer than 8 packets: ${err}`);
    } finally {
      if (!exited) capture.kill('SIGINT');
      await done;
    }
    const raw = readFileSync(file);
    assert.ok(raw.length > 0);
    assert.equal(raw.includes('very-private-path-1234'), false, 'the path is not on the wire');
    assert.equal(raw.includes('x-secret-value-4242'), false, 'a header value is not on the wire');
    const records = spawnSync('tshark', [
      '-r',
      file,
      '-Y',
      'tls',
      '-d',
      `tcp.port==${upstream.inbound!.port},tls`,
    ]);
    assert.match(records.stdout.toString(), /TLSv1\.3|Application Data/, records.stderr.toString());
  },
);

test('through two sidecars over mTLS: the app sees the caller in XFCC, never forged headers', async () => {
  const r = await viaMesh('/hello', {
    'x-forwarded-client-cert': 'By=spiffe://evil/ns/x/sa/y;URI=spiffe://evil/ns/x/sa/admin',
    'x-weft-foo': 'forged',
  });
  assert.equal(r.status, 200, r.body);
  const last = seen.at(-1)!;
  assert.equal(last.path, '/hello');
  assert.equal(last.headers['x-weft-foo'], undefined, 'x-weft-* from the caller is removed');
  const xfcc = String(last.headers['x-forwarded-client-cert']);
  assert.match(
    xfcc,
    /^By=spiffe:\/\/[^/;]+\/ns\/default\/sa\/secured;Hash=[0-9a-f]{64};URI=spiffe:\/\/[^/;]+\/ns\/default\/sa\/caller$/,
  );
  assert.equal(last.headers['x-forwarded-proto'], 'https');
});

test('STRICT: plaintext and TLS without a client certificate are refused; PERMISSIVE lets plaintext in', async () => {
  await assert.rejects(plaintextToInbound(), 'plaintext HTTP to an inbound port fails in STRICT');
  const refused = opensslWithoutCertificate();
  assert.doesNotMatch(refused, /HTTP\/1\.1 200/, 'no application data without a client certificate');
  assert.match(refused, /alert|certificate required|errno|error/i, refused);

  const yaml = [
    'apiVersion: weft.dev/v1alpha1',
    'kind: MeshConfig',
    'metadata: { name: default, namespace: weft-system }',
    'spec: { mtls: { mode: PERMISSIVE } }',
  ].join('\n');
  const applied = await runWeft(['apply', '-f', '-'], { server: cp.apiUrl, input: yaml });
  assert.equal(applied.code, 0, applied.stderr);
  assert.equal(
    await eventually('plaintext to be accepted in PERMISSIVE', () => plaintextToInbound(), 10_000),
    200,
  );
  assert.equal(seen.at(-1)?.headers['x-forwarded-client-cert'], undefined, 'plaintext has no XFCC');
  // The TLS chain is still mutual TLS: a TLS client without a certificate is still refused.
  assert.doesNotMatch(opensslWithoutCertificate(), /HTTP\/1\.1 200/);
  // Sidecars keep calling each other over mTLS.
  const r = await viaMesh('/still-mtls');
  assert.equal(r.status, 200);
  assert.match(String(seen.at(-1)?.headers['x-forwarded-client-cert']), /URI=spiffe:/);

  const back = await runWeft(['delete', 'meshconfig', 'default', '-n', 'weft-system'], { server: cp.apiUrl });
  assert.equal(back.code, 0, back.stderr);
  await eventually(
    'plaintext to be refused again (STRICT without a MeshConfig)',
    () =>
      plaintextToInbound().then(
        () => false,
        () => true,
      ),
    10_000,
  );
});
