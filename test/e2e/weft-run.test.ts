// End to end: `weft run` never leaves its app behind and reports how the app ended.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { WEFT_BIN } from '../helpers/paths.js';
import {
  eventually,
  FREE_PORT_FLAGS,
  freePort,
  joinTokenFor,
  runWeft,
  startControlPlane,
  tempDir,
  type ControlPlaneProcess,
} from '../helpers/weft-process.js';

let cp: ControlPlaneProcess;
before(async () => {
  cp = await startControlPlane({ dataDir: tempDir() });
});
after(async () => {
  await cp?.stop();
});

const base = (): string[] => ['run', '--service', 'job', '--control-plane', cp.apiUrl, ...FREE_PORT_FLAGS];

test('an app that never listens on --app-port: weft run gives up, stops the app, exits 1', async () => {
  const port = await freePort();
  // A marker no other process has, to find the app if it were left behind.
  const marker = `orphan-check-${process.pid}-${port}`;
  const r = await runWeft(
    [
      ...base(),
      '--app-port',
      String(port),
      '--app-start-timeout',
      '1',
      '--',
      process.execPath,
      '-e',
      `setTimeout(() => {}, 60000) // ${marker}`,
    ],
    { token: await joinTokenFor(cp.apiUrl, 'job') },
  );
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`the app is not listening on 127\\.0\\.0\\.1:${port}`));
  const left = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(marker));
  assert.deepEqual(left, [], 'the app outlived weft run');
});

test('--app-port already taken by another process: refused before the sidecar starts or the app runs', async (t) => {
  // Without this, the stranger passes the readiness check, the workload registers, and the app
  // dies of EADDRINUSE: the mesh sends the service's traffic to the stranger.
  const stranger = createServer((c) => c.end());
  await new Promise<void>((r) => stranger.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => stranger.close(() => r())));
  const port = (stranger.address() as AddressInfo).port;
  const marker = join(tempDir(), 'app-ran');
  const r = await runWeft(
    [
      ...base(),
      '--app-port',
      String(port),
      '--',
      process.execPath,
      '-e',
      `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'x')`,
    ],
    { token: await joinTokenFor(cp.apiUrl, 'job') },
  );
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(`--app-port ${port}: another process already listens on 127\\.0\\.0\\.1:${port}`),
  );
  assert.doesNotMatch(r.stdout, /^ready$/m);
  assert.equal(existsSync(marker), false, 'the app was started');
});

test('an app killed by a signal: weft run exits with 128 + the signal number', async () => {
  const r = await runWeft([...base(), '--', process.execPath, '-e', "process.kill(process.pid, 'SIGABRT')"], {
    token: await joinTokenFor(cp.apiUrl, 'job'),
  });
  assert.equal(r.code, 134);
});

test('weft run without a join token: refused before the app starts, saying how to get one', async () => {
  const marker = `no-token-${process.pid}`;
  const r = await runWeft([...base(), '--', process.execPath, '-e', `console.log('${marker}')`]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /needs a join token .*--token-file FILE or set WEFT_TOKEN .*weft token create --service-account job/,
  );
  assert.ok(!r.stdout.includes(marker), 'the app must not have run');
});

test('the app sees its sidecar as HTTP_PROXY and WEFT_OUTBOUND, and neither the join token nor an admin token', async () => {
  const token = await joinTokenFor(cp.apiUrl, 'job');
  const r = await runWeft(
    [
      ...base(),
      '--',
      process.execPath,
      '-e',
      'console.log(JSON.stringify([process.env.WEFT_TOKEN ?? null, process.env.WEFT_ADMIN_TOKEN ?? null]));' +
        'console.log("app-saw " + JSON.stringify({ env: process.env, argv: process.argv }))',
    ],
    { token, adminToken: cp.adminToken },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^\[null,null\]$/m);
  // Nowhere in its environment or arguments: not the token (with its CA pin), not its secret part.
  const saw = /^app-saw (.*)$/m.exec(r.stdout)![1]!;
  assert.match(token, /^weft-jt-[A-Za-z0-9_-]{43}\.sha256-/);
  for (const secret of [token, token.slice(0, token.indexOf('.')), cp.adminToken])
    assert.ok(!saw.includes(secret), 'the app saw a credential');
  // What it does see: its sidecar's outbound listener, under every name clients read it by,
  // and loopback left out of the proxy.
  const env = (JSON.parse(saw) as { env: Record<string, string> }).env;
  const outbound = `http://${/^outbound: (\S+)$/m.exec(r.stdout)![1]!}`;
  for (const name of ['HTTP_PROXY', 'http_proxy', 'WEFT_OUTBOUND']) assert.equal(env[name], outbound, name);
  for (const name of ['NO_PROXY', 'no_proxy'])
    assert.deepEqual(env[name]?.split(','), ['localhost', '127.0.0.1', '::1'], name);
});

test('weft run killed with SIGKILL: the kernel stops its app too (parent-death signal)', async () => {
  const port = await freePort();
  const marker = `pdeathsig-${process.pid}-${port}`;
  // The app listens on --app-port so weft run gets to `ready`, then idles.
  const app = `require('http').createServer((q, s) => s.end('ok')).listen(${port}, '127.0.0.1'); // ${marker}`;
  const p = spawn(
    process.execPath,
    [WEFT_BIN, ...base(), '--app-port', String(port), '--', process.execPath, '-e', app],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, WEFT_TOKEN: await joinTokenFor(cp.apiUrl, 'job'), WEFT_LOG_LEVEL: 'warn' },
    },
  );
  const findApp = (): string[] =>
    execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes(marker) && !l.includes('setpriv') && !l.includes(WEFT_BIN));
  try {
    await new Promise<void>((resolve, reject) => {
      let out = '';
      p.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (/^ready$/m.test(out)) resolve();
      });
      p.once('exit', (code) => reject(new Error(`weft run exited ${code} before ready`)));
    });
    assert.equal(findApp().length, 1, 'the app runs');
    p.kill('SIGKILL'); // weft run only, not its process group
    await eventually('the app gone after weft run was SIGKILLed', async () => findApp().length === 0, 5000);
  } finally {
    p.kill('SIGKILL');
    for (const line of findApp()) process.kill(Number(line.trim().split(/\s+/)[0]), 'SIGKILL');
  }
});
