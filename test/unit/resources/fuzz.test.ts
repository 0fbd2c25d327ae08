// Fuzz test for the apply input path (parseDocuments + validateResource), seeded from the corpus
// and the fixture documents. Properties: only WeftError ever escapes; a document reported valid
// has every required field; validating a normalized resource again changes nothing.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import { isWeftError } from '../../../src/errors.js';
import { parseDocuments, validateResource } from '../../../src/resources/index.js';
import type { AnyResource } from '../../../src/resources/index.js';
import { CORPUS_DIR, corpusInputs } from './corpus-files.js';
import { grpcRouteDoc, httpRouteDoc, serviceDoc, trafficSplitDoc, workloadDoc } from './fixtures.js';

const RUNS = { numRuns: 500 };

function assertComplete(resource: AnyResource): void {
  assert.equal(typeof resource.apiVersion, 'string');
  assert.equal(typeof resource.metadata.name, 'string');
  assert.equal(typeof resource.metadata.namespace, 'string');
  switch (resource.kind) {
    case 'Workload':
      assert.equal(typeof resource.spec.address, 'string');
      assert.ok(Array.isArray(resource.spec.ports));
      break;
    case 'Service':
      assert.ok(resource.spec.ports.length >= 1);
      for (const p of resource.spec.ports) assert.notEqual(p.targetPort, undefined);
      break;
    case 'HTTPRoute':
      assert.ok(resource.spec.parentRefs.length >= 1);
      for (const rule of resource.spec.rules)
        for (const m of rule.matches) assert.equal(typeof m.path.value, 'string');
      break;
    case 'GRPCRoute':
      assert.ok(resource.spec.parentRefs.length >= 1);
      assert.ok(Array.isArray(resource.spec.rules));
      break;
    case 'TrafficSplit':
      assert.equal(typeof resource.spec.service, 'string');
      assert.ok(resource.spec.backends.length >= 1);
      break;
  }
}

/** Parses and validates; any throw other than WeftError fails the property. */
function applyText(text: string): void {
  let documents: unknown[];
  try {
    documents = parseDocuments(text, 'fuzz.yaml').documents;
  } catch (e) {
    if (isWeftError(e)) return;
    throw e;
  }
  documents.forEach((doc, i) => checkDocument(doc, i));
}

function checkDocument(doc: unknown, index?: number): void {
  const result = validateResource(doc, index);
  if (!result.ok) {
    assert.ok(result.errors.length > 0);
    for (const e of result.errors) assert.equal(typeof e.path, 'string');
    return;
  }
  assertComplete(result.resource);
  const again = validateResource(structuredClone(result.resource));
  assert.ok(again.ok, 'a normalized resource must validate again');
  assert.deepEqual(again.resource, result.resource);
}

const seeds = [workloadDoc(), serviceDoc(), httpRouteDoc(), grpcRouteDoc(), trafficSplitDoc()];

type Container = Record<string, unknown> | unknown[];
/** Every (container, key) inside a document, so a mutation can pick one. */
function slots(value: unknown, out: [Container, string | number][] = []): [Container, string | number][] {
  if (Array.isArray(value)) value.forEach((v, i) => (out.push([value, i]), slots(v, out)));
  else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      out.push([value as Record<string, unknown>, k]);
      slots(v, out);
    }
  }
  return out;
}

const mutation = fc.record({
  seed: fc.nat({ max: seeds.length - 1 }),
  edits: fc.array(
    fc.record({
      slot: fc.nat(),
      action: fc.constantFrom('delete', 'replace', 'rename', 'duplicate'),
      value: fc.oneof(
        fc.jsonValue({ maxDepth: 3 }),
        fc.constantFrom(-1, 0, 65536, 1e21, '', '/', 'Exact', null),
      ),
      name: fc.oneof(
        fc.string({ maxLength: 12 }),
        fc.constantFrom('__proto__', 'constructor', 'weigth', 'status'),
      ),
    }),
    { minLength: 1, maxLength: 4 },
  ),
});

test('fuzz: mutated valid documents never throw and never pass incomplete', () => {
  fc.assert(
    fc.property(mutation, ({ seed, edits }) => {
      const doc = structuredClone(seeds[seed]);
      for (const edit of edits) {
        const all = slots(doc);
        if (all.length === 0) break;
        const [container, key] = all[edit.slot % all.length] ?? [doc as Container, 'kind'];
        if (Array.isArray(container) && typeof key === 'number') {
          if (edit.action === 'delete') container.splice(key, 1);
          else if (edit.action === 'duplicate') container.push(structuredClone(container[key]));
          else container[key] = edit.value;
        } else if (!Array.isArray(container) && typeof key === 'string') {
          const old = container[key];
          if (edit.action !== 'replace' && edit.action !== 'duplicate') delete container[key];
          if (edit.action === 'replace') container[key] = edit.value;
          if (edit.action === 'rename' || edit.action === 'duplicate') {
            Object.defineProperty(container, edit.name, {
              value: old,
              enumerable: true,
              configurable: true,
              writable: true,
            });
          }
        }
      }
      checkDocument(doc, 0);
    }),
    RUNS,
  );
});

test('fuzz: arbitrary JSON values as documents', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => checkDocument(value)),
    RUNS,
  );
});

const corpusTexts = corpusInputs().map((f) => readFileSync(`${CORPUS_DIR}${f}`, 'utf8'));

test('fuzz: YAML-ish text and spliced corpus files only ever raise WeftError', () => {
  const yamlish = fc
    .array(
      fc.constantFrom(
        'a',
        ':',
        ' ',
        '\n',
        '-',
        '---',
        '[',
        ']',
        '{',
        '}',
        '&x',
        '*x',
        '!!str',
        '<<',
        '"',
        "'",
        '#',
        '?',
        '|',
        '>',
        '\t',
        '1e999',
        'kind: Service',
        'spec:',
      ),
      { maxLength: 60 },
    )
    .map((parts) => parts.join(''));
  const spliced = fc
    .record({
      text: fc.constantFrom(...corpusTexts),
      at: fc.nat(),
      length: fc.nat({ max: 20 }),
      insert: fc.string({ maxLength: 10 }),
    })
    .map(({ text, at, length, insert }) => {
      const i = at % (text.length + 1);
      return text.slice(0, i) + insert + text.slice(i + length);
    });
  fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 200 }), yamlish, spliced), applyText), RUNS);
});
