// End to end: the control plane's embedded store under kill -9. A client applies objects in a
// tight loop; the control plane is SIGKILLed at a random moment; after a restart on the same
// data dir every write that was acknowledged (HTTP 200) is there. Also: a foreign or corrupt
// store file stops the control plane at start with a clear error instead of an empty mesh.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync, appendFileSync, statSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { runWeft, startControlPlane, tempDir, apiFetch } from '../helpers/weft-process.js';

function workload(i: number): object {
  return {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'Workload',
    metadata: { name: `w-${i}`, labels: { app: 'crash' } },
    spec: { address: '10.1.0.1', ports: [{ name: 'http', port: 1000 + i, protocol: 'HTTP' }] },
  };
}

test('every acknowledged apply survives kill -9 of the control plane (3 rounds)', async () => {
  const dataDir = tempDir();
  const acknowledged = new Set<number>();
  let next = 0;
  for (let round = 0; round < 3; round++) {
    const cp = await startControlPlane({ dataDir });
    let stop = false;
    const writers = [0, 1, 2].map(async () => {
      while (!stop) {
        const i = next++;
        try {
          const res = await apiFetch(`${cp.apiUrl}/api/v1/apply`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ documents: [workload(i)] }),
          });
          if (res.status === 200) acknowledged.add(i);
          else await res.text();
        } catch {
          return; // connection refused or reset: the process is gone
        }
      }
    });
    await new Promise((r) => setTimeout(r, 150 + Math.floor(Math.random() * 350)));
    await cp.kill();
    stop = true;
    await Promise.all(writers);
  }
  assert.ok(acknowledged.size > 20, `too few writes acknowledged to mean anything: ${acknowledged.size}`);

  const cp = await startControlPlane({ dataDir });
  try {
    const res = await apiFetch(`${cp.apiUrl}/api/v1/resources/workloads`);
    const names = new Set(
      ((await res.json()) as { items: Array<{ metadata: { name: string } }> }).items.map(
        (o) => o.metadata.name,
      ),
    );
    const lost = [...acknowledged].filter((i) => !names.has(`w-${i}`));
    assert.deepEqual(
      lost,
      [],
      `acknowledged writes lost after kill -9: ${lost.length} of ${acknowledged.size}`,
    );
  } finally {
    await cp.stop();
  }
});

test('a foreign or corrupt store file stops the control plane at start with a clear error', async () => {
  const dataDir = tempDir();
  const cp = await startControlPlane({ dataDir });
  const r = await runWeft(['apply', '-f', '-'], {
    server: cp.apiUrl,
    input: JSON.stringify(workload(1)),
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await cp.stop(), 0, 'SIGTERM: clean exit');

  const storeFiles = readdirSync(dataDir).filter((f) => statSync(join(dataDir, f)).isFile() && f !== 'LOCK');
  assert.ok(storeFiles.length > 0, 'the store wrote files');
  const biggest = storeFiles.sort(
    (a, b) => statSync(join(dataDir, b)).size - statSync(join(dataDir, a)).size,
  )[0]!;

  // Corrupt: garbage in the middle of the log, followed by a valid-looking tail.
  const corruptDir = tempDir();
  for (const f of storeFiles) copyFileSync(join(dataDir, f), join(corruptDir, f));
  const original = readFileSync(join(dataDir, biggest));
  const damaged = Buffer.from(original);
  damaged[Math.floor(damaged.length * 0.6)]! ^= 0xff;
  writeFileSync(join(corruptDir, biggest), damaged);
  appendFileSync(
    join(corruptDir, biggest),
    original.subarray(original.length - Math.min(64, original.length)),
  );
  await assert.rejects(startControlPlane({ dataDir: corruptDir }), (e: Error) => {
    assert.match(e.message, /exited with 1/);
    assert.match(e.message, /WEFT_E_STORE_(CORRUPT|FOREIGN)/);
    assert.match(e.message, new RegExp(biggest.replace('.', '\\.')));
    return true;
  });

  // Foreign: a file of our name that is not ours.
  const foreignDir = tempDir();
  writeFileSync(join(foreignDir, biggest), 'PK\u0003\u0004 this is a zip file, not a weft store\n');
  await assert.rejects(startControlPlane({ dataDir: foreignDir }), (e: Error) => {
    assert.match(e.message, /WEFT_E_STORE_FOREIGN/);
    return true;
  });
});
