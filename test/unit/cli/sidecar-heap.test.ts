// capYoungGeneration (part of tuneHeapForSidecar): a process that keeps allocating and retaining
// objects, as a busy sidecar does, keeps its young generation at the cap; a size given on the
// command line stands.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { repoPath } from '../../helpers/paths.js';

const MiB = 1024 * 1024;

/** Runs a child that caps, then churns through objects a fraction of which survive a while. */
function youngGenerationAfterChurn(nodeFlags: string[]): number {
  const module = repoPath('dist', 'src', 'cli', 'sidecar-heap.js');
  const script = `
    import { capYoungGeneration } from ${JSON.stringify(module)};
    import { getHeapSpaceStatistics } from 'node:v8';
    capYoungGeneration();
    const live = [];
    for (let round = 0; round < 300; round++) {
      for (let i = 0; i < 5000; i++) live.push({ round, i, s: 'x'.repeat(i % 64) });
      if (live.length > 40000) live.splice(0, 20000);
      await new Promise((r) => setImmediate(r));
    }
    const s = getHeapSpaceStatistics().find((x) => x.space_name === 'new_space');
    console.log(s.space_size);
  `;
  const r = spawnSync(process.execPath, [...nodeFlags, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  assert.equal(r.status, 0, r.stderr);
  return Number(r.stdout.trim());
}

test('the young generation stays at two 2 MiB semi-spaces under allocation', () => {
  const size = youngGenerationAfterChurn([]);
  assert.ok(size <= 4 * MiB, `young generation ${(size / MiB).toFixed(1)} MiB`);
});

test('--max-semi-space-size on the command line is left in charge', () => {
  assert.ok(youngGenerationAfterChurn(['--max-semi-space-size=16']) > 4 * MiB);
});
