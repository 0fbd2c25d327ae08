import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertErrors, assertValid, trafficSplitDoc, withField } from './fixtures.js';

test('a valid TrafficSplit keeps its namespace', () => {
  const { resource, warnings } = assertValid(trafficSplitDoc());
  assert.equal(resource.metadata.namespace, 'shop');
  assert.deepEqual(warnings, []);
});

test('TrafficSplit older SMI versions convert to v1alpha4', () => {
  for (const version of ['v1alpha2', 'v1alpha3']) {
    const { resource, warnings } = assertValid(
      withField(trafficSplitDoc(), 'apiVersion', `split.smi-spec.io/${version}`),
    );
    assert.equal(resource.apiVersion, 'split.smi-spec.io/v1alpha4');
    assert.equal(warnings.length, 1);
  }
  assertErrors(withField(trafficSplitDoc(), 'apiVersion', 'split.smi-spec.io/v1alpha1'), [
    [
      'apiVersion',
      'must be one of split.smi-spec.io/v1alpha4, split.smi-spec.io/v1alpha3, split.smi-spec.io/v1alpha2 for kind TrafficSplit',
    ],
  ]);
});

test('TrafficSplit backends: weights are integers from 0 to 1,000,000, services unique', () => {
  const doc = withField(trafficSplitDoc(), 'spec.backends', [
    { service: 'echo-v1', weight: -1 },
    { service: 'echo-v2', weight: '50m' },
    { service: 'echo-v3', weight: 1 },
    { service: 'echo-v3', weight: 1 },
    // Larger weights used to pass validation and then fail to encode (uint32) at the proxies.
    { service: 'echo-v4', weight: 4294967296 },
  ]);
  assertErrors(doc, [
    ['spec.backends[0].weight', 'must be an integer ≥ 0 and ≤ 1000000, got -1'],
    ['spec.backends[1].weight', 'must be an integer ≥ 0 and ≤ 1000000, got "50m"'],
    ['spec.backends[4].weight', 'must be an integer ≥ 0 and ≤ 1000000, got 4294967296'],
  ]);
  assertErrors(
    withField(trafficSplitDoc(), 'spec.backends', [
      { service: 'a', weight: 1 },
      { service: 'a', weight: 2 },
    ]),
    [['spec.backends[1].service', 'duplicate backend "a" (also at [0])']],
  );
  assertErrors(withField(trafficSplitDoc(), 'spec.backends', []), [
    ['spec.backends', 'must have at least 1 item'],
  ]);
});

test('TrafficSplit matches on HTTPRouteGroup are not supported yet', () => {
  const doc = withField(trafficSplitDoc(), 'spec.matches', [
    { kind: 'HTTPRouteGroup', name: 'canary-headers' },
  ]);
  assertErrors(doc, [['spec.matches', 'matches on HTTPRouteGroup are not supported yet']]);
  assertValid(withField(trafficSplitDoc(), 'spec.matches', []));
});

test('TrafficSplit with only zero weights warns', () => {
  const doc = withField(trafficSplitDoc(), 'spec.backends', [{ service: 'a', weight: 0 }]);
  assert.match(assertValid(doc).warnings.join('\n'), /no traffic flows/);
});

test('TrafficSplit root service is required', () => {
  assertErrors(withField(trafficSplitDoc(), 'spec.service', undefined), [
    ['spec.service', 'required field is missing'],
  ]);
});
