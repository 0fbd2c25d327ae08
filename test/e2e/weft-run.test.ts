// End to end: `weft run` never leaves its app behind and reports how the app ended.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
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

const base = (): string[] => [
  'run',
  '--service',
  'job',
  '--control-plane',
  cp.apiUrl,
  '--outbound-addr',
  '127.0.0.1:0',
  '--inbound-addr',
  '127.0.0.1:0',
  '--admin-addr',
  '127.0.0.1:0',
];

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

test('the app sees neither the join token nor an admin token', async () => {
  const r = await runWeft(
    [
      ...base(),
      '--',
      process.execPath,
      '-e',
      'console.log(JSON.stringify([process.env.WEFT_TOKEN ?? null, process.env.WEFT_ADMIN_TOKEN ?? null]))',
    ],
    { token: await joinTokenFor(cp.apiUrl, 'job'), adminToken: cp.adminToken },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^\[null,null\]$/m);
});
