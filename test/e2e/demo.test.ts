// End to end: the main job (`npm start` runs `weft demo`). A bounded run must start the control
// plane, route calls over both echo versions, send canary calls to v2, pick up the mid-run
// weight change, and exit 0 leaving nothing behind.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { runWeft } from '../helpers/weft-process.js';

/** Warnings are logged whatever the environment running the tests asks for. */
const WARN = { WEFT_LOG_LEVEL: 'warn' };

/**
 * The log lines of a warning or worse. A clean run raises no alarm: no process of the demo warns
 * (a join token without its CA pin, a deregistration that failed) or errs.
 */
const alarms = (r: { stdout: string; stderr: string }): string[] =>
  `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => /"level":(40|50|60)\b/.test(l));

test('weft demo --proxyless routes calls by weight and header, shifts weights live, and exits cleanly', async () => {
  const r = await runWeft(['demo', '--proxyless', '--calls', '200'], { env: WARN });
  assert.equal(r.code, 0, `demo failed:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /api: http:\/\/127\.0\.0\.1:\d+/);
  assert.match(r.stdout, /proxyless gRPC client calling xds:\/\/\/echo/);
  const canaries = [...r.stdout.matchAll(/with x-canary: true → (\S+)/g)].map((m) => m[1]);
  assert.equal(canaries.length, 20);
  assert.deepEqual(new Set(canaries), new Set(['echo-v2']));
  assert.match(r.stdout, /route changed: v1 50% \/ v2 50%/);
  assert.doesNotMatch(r.stdout, /failed/);
  assert.deepEqual(alarms(r), [], 'warnings or errors from a clean demo run');
  // After the change (calls 101–200), 90 plain calls at 50/50: both versions get a share.
  // Tolerance: each side ≥ 20 of 90 (p ≈ 1e-8 of a false failure under a fair split).
  const after = r.stdout.slice(r.stdout.indexOf('route changed'));
  const v1 = [...after.matchAll(/echo-v1: (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
  const v2 = [...after.matchAll(/echo-v2: (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
  assert.ok(v1 >= 20 && v2 >= 20, `after the change: v1=${v1} v2=${v2}\n${r.stdout}`);
});

test('weft demo (npm start): the reference topology answers through the mesh, then stops leaving nothing', async () => {
  const r = await runWeft(['demo', '--duration', '4', '--interval', '0.5'], { env: WARN });
  assert.equal(r.code, 0, `demo failed:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /curl -x http:\/\/127\.0\.0\.1:\d+ http:\/\/fe\//);
  const trees = [...r.stdout.matchAll(/^ {2}200 +\d+ ms {2}(\S+)$/gm)].map((m) => m[1]!);
  assert.ok(trees.length >= 4, `expected several answers:\n${r.stdout}`);
  for (const t of trees)
    assert.match(t, /^fe\[fe-0\]\(be1\[be1-[01]\]\(be2\[be2-0\],be3\[be3-0\]\),be4\[be4-0\]\)$/);
  assert.match(r.stdout, /stopped; nothing left running\./);
  assert.deepEqual(alarms(r), [], 'warnings or errors from a clean demo run');
  // Every process the demo started is gone: its sidecars (by the demo's control plane URL) and
  // its apps (by the ports it printed).
  const api = /control plane api (\S+),/.exec(r.stdout)![1]!;
  const ports = [...r.stdout.matchAll(/app on 127\.0\.0\.1:(\d+),/g)].map((m) => m[1]!);
  assert.equal(ports.length, 6);
  const left = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
    .split('\n')
    .filter(
      (l) => l.includes(api) || ports.some((p) => l.includes('demo-app') && l.includes(`--port ${p} `)),
    );
  assert.deepEqual(left, [], 'a demo process outlived the demo');
});
