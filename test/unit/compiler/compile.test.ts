// Golden-file tests of the compiler: each test/golden/compiler/<case>.input.json holds a mesh
// model and the requesting node; the compiled resources must equal <case>.golden.json exactly.
// Run with WEFT_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change, then
// review the diff like any other code change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { compile, type NodeView } from '../../../src/compiler/compile.js';
import { DEFAULT_PATH_NORMALIZATION } from '../../../src/compiler/path-normalization.js';
import { modelInput } from '../../../src/control-plane/mesh-state.js';
import { buildModel } from '../../../src/registry/build-model.js';
import type { MeshModel, PathNormalizationMode } from '../../../src/registry/model.js';
import { TypeUrl, type ResourceSet } from '../../../src/xds/types.js';
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

/** Every HttpConnectionManager in the compiled listeners (socket listeners and API listeners). */
function connectionManagers(set: ResourceSet): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(visit);
    if (typeof v !== 'object' || v === null) return;
    const o = v as Record<string, unknown>;
    if (typeof o['@type'] === 'string' && o['@type'].endsWith('.HttpConnectionManager')) out.push(o);
    Object.values(o).forEach(visit);
  };
  visit([...(set.get(TypeUrl.Listener) ?? new Map<string, object>()).values()]);
  return out;
}

const PATH_FIELDS = ['normalize_path', 'merge_slashes', 'path_with_escaped_slashes_action'];

test('path normalization: each MeshConfig mode gives every sidecar HCM its fields, MERGE_SLASHES by default', () => {
  const input = JSON.parse(readFileSync(`${dir}/sidecar-path-normalization.input.json`, 'utf8')) as {
    node: NodeView;
    model: MeshModel;
  };
  const expected: Record<PathNormalizationMode, Record<string, unknown>> = {
    NONE: {},
    BASE: { normalize_path: { value: true } },
    MERGE_SLASHES: { normalize_path: { value: true }, merge_slashes: true },
    DECODE_AND_MERGE_SLASHES: {
      normalize_path: { value: true },
      merge_slashes: true,
      path_with_escaped_slashes_action: 'UNESCAPE_AND_FORWARD',
    },
  };
  const fieldsOf = (hcm: Record<string, unknown>) =>
    Object.fromEntries(PATH_FIELDS.filter((f) => f in hcm).map((f) => [f, hcm[f]]));
  for (const [mode, fields] of Object.entries(expected)) {
    const hcms = connectionManagers(
      compile({ ...input.model, pathNormalization: mode as PathNormalizationMode }, input.node),
    );
    assert.equal(hcms.length, 2, 'outbound and inbound');
    for (const hcm of hcms) assert.deepEqual(fieldsOf(hcm), fields, `${mode} ${String(hcm.stat_prefix)}`);
  }
  const { pathNormalization: _, ...withoutMode } = input.model;
  for (const hcm of connectionManagers(compile(withoutMode, input.node)))
    assert.deepEqual(fieldsOf(hcm), expected.MERGE_SLASHES);
  // The compiler's fallback is the MeshConfig's default: a mesh without a MeshConfig gets it too.
  assert.equal(buildModel(modelInput([])).pathNormalization, DEFAULT_PATH_NORMALIZATION);
});

test('path normalization: proxyless gRPC clients get none of the fields, whatever the mode', () => {
  const input = JSON.parse(readFileSync(`${dir}/filters-proxyless.input.json`, 'utf8')) as {
    node: NodeView;
    model: MeshModel;
  };
  assert.equal(input.node.sidecar, undefined);
  const hcms = connectionManagers(
    compile({ ...input.model, pathNormalization: 'DECODE_AND_MERGE_SLASHES' }, input.node),
  );
  assert.ok(hcms.length > 0);
  for (const hcm of hcms) for (const f of PATH_FIELDS) assert.ok(!(f in hcm), `${f} in a proxyless HCM`);
});
