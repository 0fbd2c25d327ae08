// Valid documents of every kind, and assertions on validation errors, shared by the kind tests.
// Each test starts from a valid document and breaks one thing, so a failure names one rule.
import assert from 'node:assert/strict';
import type { FieldError } from '../../../src/errors.js';
import { validateResource } from '../../../src/resources/index.js';
import type { AnyResource } from '../../../src/resources/index.js';

export function workloadDoc(): Record<string, unknown> {
  return {
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'Workload',
    metadata: { name: 'echo-v1-0', labels: { app: 'echo', version: 'v1' } },
    spec: { address: '10.0.0.11', ports: [{ name: 'http', port: 8080 }] },
  };
}

export function serviceDoc(): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'echo-v1' },
    spec: { selector: { app: 'echo', version: 'v1' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
  };
}

export function httpRouteDoc(): Record<string, unknown> {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'echo-split' },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 80 }],
      rules: [
        {
          matches: [{ headers: [{ name: 'x-canary', value: 'true' }] }],
          backendRefs: [{ name: 'echo-v2', port: 80 }],
        },
        {
          backendRefs: [
            { name: 'echo-v1', port: 80, weight: 90 },
            { name: 'echo-v2', port: 80, weight: 10 },
          ],
        },
      ],
    },
  };
}

export function grpcRouteDoc(): Record<string, unknown> {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'GRPCRoute',
    metadata: { name: 'greeter' },
    spec: {
      parentRefs: [{ name: 'greeter', port: 50051 }],
      rules: [
        {
          matches: [{ method: { service: 'helloworld.Greeter', method: 'SayHello' } }],
          backendRefs: [{ name: 'greeter-v2', port: 50051 }],
        },
      ],
    },
  };
}

export function trafficSplitDoc(): Record<string, unknown> {
  return {
    apiVersion: 'split.smi-spec.io/v1alpha4',
    kind: 'TrafficSplit',
    metadata: { name: 'echo-split', namespace: 'shop' },
    spec: {
      service: 'echo',
      backends: [
        { service: 'echo-v1', weight: 80 },
        { service: 'echo-v2', weight: 20 },
      ],
    },
  };
}

/** Sets a value at a dotted path with [i] indices, creating nothing: the path must exist up to the last step. */
export function withField(
  doc: Record<string, unknown>,
  path: string,
  value: unknown,
): Record<string, unknown> {
  const copy = structuredClone(doc);
  const steps = path.match(/[^.[\]]+/g) ?? [];
  let target: Record<string, unknown> = copy;
  for (const step of steps.slice(0, -1)) target = target[step] as Record<string, unknown>;
  const last = steps[steps.length - 1] ?? '';
  if (value === undefined) delete target[last];
  else target[last] = value;
  return copy;
}

export function assertValid(doc: unknown): { resource: AnyResource; warnings: string[] } {
  const result = validateResource(doc);
  if (!result.ok)
    assert.fail(`expected valid, got:\n${result.errors.map((e) => `${e.path}: ${e.message}`).join('\n')}`);
  return result;
}

/** Asserts exactly these errors, in any order: [path, fragment of the message]. */
export function assertErrors(doc: unknown, expected: [path: string, fragment: string][]): FieldError[] {
  const result = validateResource(doc);
  if (result.ok)
    return assert.fail(`expected errors at ${expected.map(([p]) => p).join(', ')}, got a valid resource`);
  const describe = (errors: FieldError[]) => errors.map((e) => `${e.path}: ${e.message}`).join('\n');
  assert.equal(result.errors.length, expected.length, `wrong number of errors:\n${describe(result.errors)}`);
  for (const [path, fragment] of expected) {
    const match = result.errors.find((e) => e.path === path && e.message.includes(fragment));
    assert.ok(
      match,
      `no error at ${path} containing ${JSON.stringify(fragment)}; got:\n${describe(result.errors)}`,
    );
  }
  return result.errors;
}
