// What a sidecar process loads. Every sidecar runs beside an app and holds its modules for its
// whole life, so the libraries the control plane uses stay out of it: protobufjs (its reflection
// and generated codecs were ~5 MB of an idle sidecar's heap; the sidecar's codec is
// src/xds/wire.ts), @grpc/grpc-js (~6 MB; the sidecar's ADS channel is src/xds/grpc-channel.ts),
// the schema and YAML libraries. A regression here costs memory in every pod-equivalent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { repoPath } from '../../helpers/paths.js';

test('the sidecar loads no npm package (protobufjs, grpc-js, yaml stay in the control plane)', () => {
  const entry = repoPath('dist', 'src', 'cli', 'sidecar-command.js');
  const probe = `
    import { createRequire } from 'node:module';
    await import(${JSON.stringify(entry)});
    const loaded = Object.keys(createRequire(import.meta.url).cache)
      .filter((p) => p.includes('/node_modules/'))
      .map((p) => p.split('/node_modules/').pop().split('/').slice(0, p.includes('/node_modules/@') ? 2 : 1).join('/'));
    console.log(JSON.stringify([...new Set(loaded)].sort()));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  // The probe sees CommonJS packages (all of these are): an import of protobufjs shows up here.
  assert.deepEqual(JSON.parse(r.stdout.trim()), []);
});
