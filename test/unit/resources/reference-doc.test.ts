// docs/resources.md is checked against the schemas: generated tables must be current, and every
// YAML example in it must validate, so the reference can neither drift nor show broken config.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { KINDS, parseDocuments, validateBatch } from '../../../src/resources/index.js';
import {
  REFERENCE_DOC_PATH,
  renderFieldTable,
  updateReferenceDoc,
} from '../../../src/resources/reference-doc.js';

const markdown = readFileSync(REFERENCE_DOC_PATH, 'utf8');

test('docs/resources.md field tables match the schemas', () => {
  assert.equal(
    updateReferenceDoc(markdown),
    markdown,
    'docs/resources.md is stale: run `npx tsc -p . && node dist/src/resources/reference-doc.js`',
  );
  for (const kind of KINDS) {
    assert.ok(markdown.includes(`<!-- fields:${kind.kind} -->`), `no field table for ${kind.kind}`);
  }
});

test('field tables list every field of every kind', () => {
  const workload = renderFieldTable(KINDS.find((k) => k.kind === 'Workload') ?? assert.fail());
  for (const field of ['metadata.name', 'spec.address', 'spec.ports[].protocol', 'spec.serviceAccount']) {
    assert.ok(workload.includes(`| \`${field}\` |`), field);
  }
  assert.match(
    workload,
    /\| `spec.ports\[\].protocol` \| one of HTTP, HTTP2, GRPC, TCP \| {2}\| `"HTTP"` \|/,
  );
});

test('every YAML example in docs/resources.md is valid, and every kind has one', () => {
  const blocks = [...markdown.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
  const kinds = new Set<string>();
  blocks.forEach((block, i) => {
    const result = validateBatch(parseDocuments(block, `docs example ${i}`).documents);
    if (!result.ok)
      assert.fail(`example ${i}:\n${result.errors.map((e) => `${e.path}: ${e.message}`).join('\n')}`);
    for (const r of result.resources) kinds.add(r.kind);
  });
  assert.deepEqual([...kinds].sort(), KINDS.map((k) => k.kind).sort());
});
