// Golden-file tests of the compiler: each test/golden/compiler/<case>.input.json holds a mesh
// model and the requesting node; the compiled resources must equal <case>.golden.json exactly.
// Run with WEFT_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change, then
// review the diff like any other code change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { compile, type NodeView } from '../../../src/compiler/compile.js';
import type { MeshModel } from '../../../src/registry/model.js';
import type { ResourceSet } from '../../../src/xds/types.js';
import { repoPath } from '../../helpers/paths.js';
import { encodeResource } from '../../../src/xds/codec.js';

const dir = repoPath('test', 'golden', 'compiler');

export function resourceSetToJson(set: ResourceSet): Record<string, Record<string, object>> {
  const out: Record<string, Record<string, object>> = {};
  for (const [type, resources] of set) out[type] = Object.fromEntries(resources);
  return out;
}

const cases = readdirSync(dir)
  .filter((f) => f.endsWith('.input.json'))
  .map((f) => f.slice(0, -'.input.json'.length));

test('there are golden cases', () => {
  assert.ok(cases.length >= 5, `expected at least 5 golden cases in ${dir}, found ${cases.length}`);
});

for (const name of cases) {
  test(`compile: ${name}`, () => {
    const input = JSON.parse(readFileSync(`${dir}/${name}.input.json`, 'utf8')) as {
      node: NodeView;
      model: MeshModel;
    };
    const actual = resourceSetToJson(compile(input.model, input.node));
    const goldenPath = `${dir}/${name}.golden.json`;
    if (process.env.WEFT_UPDATE_GOLDEN === '1') {
      writeFileSync(goldenPath, JSON.stringify(actual, null, 2) + '\n');
    }
    const expected = JSON.parse(readFileSync(goldenPath, 'utf8')) as unknown;
    assert.deepEqual(actual, expected);
  });

  test(`every compiled resource encodes as its Envoy proto (strict): ${name}`, () => {
    const input = JSON.parse(readFileSync(`${dir}/${name}.input.json`, 'utf8')) as {
      node: NodeView;
      model: MeshModel;
    };
    for (const [type, resources] of compile(input.model, input.node)) {
      for (const [resourceName, obj] of resources) {
        assert.doesNotThrow(() => encodeResource(type, obj), `${type} ${resourceName}`);
      }
    }
  });

  test(`compile is deterministic: ${name}`, () => {
    const input = JSON.parse(readFileSync(`${dir}/${name}.input.json`, 'utf8')) as {
      node: NodeView;
      model: MeshModel;
    };
    const a = JSON.stringify(resourceSetToJson(compile(input.model, input.node)));
    const reversed: MeshModel = { ...input.model, services: [...input.model.services].reverse() };
    const b = JSON.stringify(resourceSetToJson(compile(reversed, input.node)));
    assert.equal(a, b);
  });
}
