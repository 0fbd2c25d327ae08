// Runs every compiled test file with Node's own test runner. Node 20's runner takes no globs,
// so the files are collected here; unit tests first, then integration, then end-to-end.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const tiers = ['unit', 'integration', 'e2e'];
const only = process.argv.slice(2);
function collect(dir) {
  let out = [];
  let entries;
  try {
    entries = readdirSync(dir).sort();
  } catch {
    return out;
  }
  for (const name of entries) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(collect(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}
const files = tiers
  .filter((t) => only.length === 0 || only.includes(t))
  .flatMap((t) => collect(join('dist', 'test', t)));
if (files.length === 0) {
  console.error('run-tests: no compiled test files under dist/test; run `npm run build` first');
  process.exit(1);
}
const r = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=2', '--test-timeout=120000', '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
);
process.exit(r.status ?? 1);
