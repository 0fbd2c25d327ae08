import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  array,
  boolean,
  describeFields,
  int,
  joinPath,
  literal,
  number,
  object,
  record,
  string,
  union,
} from '../../../src/schema/schema.js';
import type { Infer } from '../../../src/schema/schema.js';

const port = object({
  name: string({ minLength: 1 }).optional(),
  port: int({ min: 1, max: 65535 }).describe('Port number.'),
  protocol: string({ enum: ['HTTP', 'TCP'] }).default('HTTP'),
  weight: int({ min: 0 }).default(1),
  kind: literal('Service').default('Service'),
  group: string().default(''),
  namespace: string().optional(),
});
const spec = object({
  ports: array(port, { minItems: 1, maxItems: 2 }),
  labels: record(string()).optional(),
  enabled: boolean().default(false),
  ratio: number({ min: 0, max: 1 }).optional(),
  target: union(int({ min: 1 }), string({ minLength: 1 })).optional(),
});

test('Infer gives the output type: defaults are present, optionals may be absent', () => {
  const value: Infer<typeof spec> = {
    ports: [{ port: 80, protocol: 'TCP', weight: 1, kind: 'Service', group: '' }],
    enabled: true,
  };
  // @ts-expect-error protocol is an enum, not any string
  const wrong: Infer<typeof port>['protocol'] = 'UDP';
  assert.ok(value && wrong);
});

test('valid input gets defaults and loses nothing it declared', () => {
  const result = spec.validate({ ports: [{ port: 80 }], labels: { a: 'b' }, target: 'http' });
  assert.deepEqual(result, {
    ok: true,
    value: {
      ports: [{ port: 80, protocol: 'HTTP', weight: 1, kind: 'Service', group: '' }],
      labels: { a: 'b' },
      enabled: false,
      target: 'http',
    },
  });
});

test('defaults are copied, never shared between results', () => {
  const withList = object({ items: array(string()).default([]) });
  const first = withList.validate({});
  assert.ok(first.ok);
  first.value.items.push('x');
  assert.deepEqual(withList.validate({}), { ok: true, value: { items: [] } });
});

test('null counts as absent', () => {
  assert.deepEqual(port.validate({ port: 1, name: null, protocol: null }).ok, true);
  assert.deepEqual(port.validate({ port: null }), {
    ok: false,
    errors: [{ path: 'port', message: 'required field is missing; expected an integer ≥ 1 and ≤ 65535' }],
  });
});

test('every error is collected with its path', () => {
  const result = spec.validate({
    ports: [{ port: 0 }, { port: 80, weigth: 2, protocol: 'http' }, { port: 1.5 }],
    labels: { ok: 'x', bad: 7 },
    enabled: 'yes',
    ratio: 2,
    target: true,
    extra: 1,
  });
  assert.equal(result.ok, false);
  assert.deepEqual(!result.ok && result.errors.map((e) => `${e.path}: ${e.message}`), [
    'extra: unknown field "extra"; allowed: ports, labels, enabled, ratio, target',
    'ports: must have at most 2 items, got 3',
    'ports[0].port: must be an integer ≥ 1 and ≤ 65535, got 0',
    'ports[1].weigth: unknown field "weigth"; allowed: name, port, protocol, weight, kind, group, namespace (did you mean "weight"?)',
    'ports[1].protocol: must be one of HTTP, TCP, got "http" (values are case-sensitive: did you mean "HTTP"?)',
    'ports[2].port: must be an integer ≥ 1 and ≤ 65535, got 1.5',
    'labels.bad: must be a string, got 7 (quote it in YAML)',
    'enabled: must be true or false, got "yes"',
    'ratio: must be a number ≥ 0 and ≤ 1, got 2',
    'target: must be an integer ≥ 1 or a non-empty string, got true',
  ]);
});

test('integer rule matches the documented wording', () => {
  const weight = object({ weight: int({ min: 0 }) });
  assert.deepEqual(weight.validate({ weight: -1 }), {
    ok: false,
    errors: [{ path: 'weight', message: 'must be an integer ≥ 0, got -1' }],
  });
  assert.match(
    (weight.validate({ weight: '5' }) as { errors: { message: string }[] }).errors[0]?.message ?? '',
    /remove the quotes/,
  );
  assert.equal(weight.validate({ weight: 1e300 }).ok, false);
  assert.equal(weight.validate({ weight: Infinity }).ok, false);
  assert.equal(weight.validate({ weight: 2 ** 53 }).ok, false);
});

test('string length, format and enum rules say what is allowed', () => {
  const s = object({
    label: string({ maxLength: 3, format: { description: 'lowercase letters', test: /^[a-z]+$/ } }),
    nonEmpty: string({ minLength: 1 }).optional(),
    long: string({ minLength: 3 }).optional(),
  });
  const result = s.validate({ label: 'ABCD', nonEmpty: '', long: 'ab' });
  assert.deepEqual(!result.ok && result.errors, [
    { path: 'label', message: 'must be at most 3 characters, got 4' },
    { path: 'nonEmpty', message: 'must not be empty' },
    { path: 'long', message: 'must be at least 3 characters, got 2' },
  ]);
  assert.deepEqual(
    !s.validate({ label: 'AB' }).ok && (s.validate({ label: 'AB' }) as { errors: unknown }).errors,
    [{ path: 'label', message: 'must be lowercase letters, got "AB"' }],
  );
});

test('arrays check item counts and report items by index', () => {
  const list = object({ xs: array(int(), { minItems: 1 }) });
  assert.deepEqual(list.validate({ xs: [] }), {
    ok: false,
    errors: [{ path: 'xs', message: 'must have at least 1 item, got 0' }],
  });
  assert.deepEqual(list.validate({ xs: [1, null] }), {
    ok: false,
    errors: [{ path: 'xs[1]', message: 'must be an integer, got null' }],
  });
  assert.deepEqual(list.validate({ xs: { a: 1 } }), {
    ok: false,
    errors: [{ path: 'xs', message: 'must be a list, got an object' }],
  });
});

test('records validate keys and values, quote odd keys, and keep "__proto__" as data', () => {
  const map = object({
    labels: record(string({ maxLength: 2 }), {
      key: string({ format: { description: 'no spaces', test: /^\S+$/ } }),
    }),
  });
  const result = map.validate({ labels: { 'a b': 'x', 'example.com/k': 'long' } });
  assert.deepEqual(!result.ok && result.errors, [
    { path: 'labels["a b"]', message: 'invalid key: must be no spaces, got "a b"' },
    { path: 'labels["example.com/k"]', message: 'must be at most 2 characters, got 4' },
  ]);
  const proto = map.validate(JSON.parse('{"labels": {"__proto__": "x"}}'));
  assert.ok(proto.ok);
  assert.equal(Object.getPrototypeOf(proto.value.labels), Object.prototype);
  assert.deepEqual(Object.keys(proto.value.labels), ['__proto__']);
});

test('objects ignore listed fields and drop them from the output', () => {
  const meta = object({ name: string() }, { ignored: ['uid'] });
  assert.deepEqual(meta.validate({ name: 'a', uid: '123' }), { ok: true, value: { name: 'a' } });
  assert.deepEqual(meta.validate([]), {
    ok: false,
    errors: [{ path: '', message: 'must be an object with fields name, got a list' }],
  });
});

test('refinements report relative paths and run only on valid subtrees', () => {
  let calls = 0;
  const unique = object({
    items: array(object({ id: int() })).refine((items, report) => {
      calls++;
      items.forEach((item, i) => {
        if (items.findIndex((other) => other.id === item.id) !== i)
          report(`[${i}].id`, `duplicate id ${item.id}`);
      });
    }),
  });
  assert.deepEqual(unique.validate({ items: [{ id: 1 }, { id: 1 }] }), {
    ok: false,
    errors: [{ path: 'items[1].id', message: 'duplicate id 1' }],
  });
  assert.equal(unique.validate({ items: [{ id: 'x' }, { id: 1 }] }).ok, false);
  assert.equal(calls, 1);
});

test('transform normalizes a valid value', () => {
  const s = object({ port: int(), target: int().optional() }).transform((v) => ({
    ...v,
    target: v.target ?? v.port,
  }));
  assert.deepEqual(s.validate({ port: 80 }), { ok: true, value: { port: 80, target: 80 } });
});

test('literal and union messages name the alternatives', () => {
  assert.deepEqual(literal('v1').validate('v2'), {
    ok: false,
    errors: [{ path: '', message: 'must be "v1", got "v2"' }],
  });
  const target = union(int({ min: 1 }), string({ minLength: 1 }));
  assert.deepEqual(target.validate(0), {
    ok: false,
    errors: [{ path: '', message: 'must be an integer ≥ 1, got 0' }],
  });
  assert.deepEqual(target.validate('http'), { ok: true, value: 'http' });
});

test('schemas describe their fields for docs', () => {
  const rows = describeFields(object({ spec }));
  const portRow = rows.find((r) => r.field === 'spec.ports[].port');
  assert.deepEqual(portRow, {
    field: 'spec.ports[].port',
    type: 'integer ≥ 1 and ≤ 65535',
    required: true,
    description: 'Port number.',
  });
  assert.deepEqual(
    rows.find((r) => r.field === 'spec.ports[].protocol'),
    { field: 'spec.ports[].protocol', type: 'one of HTTP, TCP', required: false, default: 'HTTP' },
  );
  assert.equal(rows.find((r) => r.field === 'spec.ports')?.type, 'list of objects (at least 1, at most 2)');
});

test('joinPath builds the documented path form', () => {
  assert.equal(joinPath('', 'spec'), 'spec');
  assert.equal(joinPath('spec.rules', '[0]'), 'spec.rules[0]');
  assert.equal(joinPath('spec', 'rules[0].backendRefs[1].weight'), 'spec.rules[0].backendRefs[1].weight');
  assert.equal(
    joinPath('metadata.labels', 'app.kubernetes.io/name'),
    'metadata.labels["app.kubernetes.io/name"]',
  );
});
