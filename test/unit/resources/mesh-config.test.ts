import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildModel } from '../../../src/registry/build-model.js';
import { modelInput } from '../../../src/control-plane/mesh-state.js';
import { assertErrors, assertValid } from './fixtures.js';

const meshConfig = (over: { name?: string; namespace?: string; spec?: unknown } = {}): unknown => ({
  apiVersion: 'weft.dev/v1alpha1',
  kind: 'MeshConfig',
  metadata: { name: over.name ?? 'default', namespace: over.namespace ?? 'weft-system' },
  spec: over.spec ?? { mtls: { mode: 'PERMISSIVE' } },
});

test('MeshConfig weft-system/default is valid; mtls.mode defaults to STRICT, path normalization to MERGE_SLASHES', () => {
  assert.equal(assertValid(meshConfig()).resource.kind, 'MeshConfig');
  const { resource } = assertValid(meshConfig({ spec: {} }));
  assert.deepEqual((resource as { spec: unknown }).spec, {
    mtls: { mode: 'STRICT' },
    pathNormalization: { normalization: 'MERGE_SLASHES' },
  });
});

test('MeshConfig: the four path normalizations, and nothing else', () => {
  for (const normalization of ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES']) {
    const { resource } = assertValid(meshConfig({ spec: { pathNormalization: { normalization } } }));
    assert.equal(buildModel(modelInput([resource])).pathNormalization, normalization);
  }
  assertErrors(meshConfig({ spec: { pathNormalization: { normalization: 'DECODE' } } }), [
    [
      'spec.pathNormalization.normalization',
      'must be one of NONE, BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES, got "DECODE"',
    ],
  ]);
});

test('MeshConfig: only weft-system/default, and only the two modes', () => {
  assertErrors(meshConfig({ name: 'mesh', namespace: 'default', spec: { mtls: { mode: 'OFF' } } }), [
    ['spec.mtls.mode', 'must be one of STRICT, PERMISSIVE, got "OFF"'],
  ]);
  assertErrors(meshConfig({ name: 'mesh', namespace: 'default' }), [
    ['metadata.name', 'must be "default": the mesh has one MeshConfig'],
    ['metadata.namespace', 'must be "weft-system": the mesh has one MeshConfig'],
  ]);
});

test('the model reads the mTLS mode from the MeshConfig, STRICT without one', () => {
  const { resource } = assertValid(meshConfig());
  assert.equal(buildModel(modelInput([resource])).mtlsMode, 'PERMISSIVE');
  assert.equal(buildModel(modelInput([])).mtlsMode, 'STRICT');
  assert.equal(buildModel(modelInput([])).pathNormalization, 'MERGE_SLASHES');
});
