// Regression cases from test/corpus/resources: each input file has a sibling `<name>.expect.json`
// with the outcome (valid / invalid / parse-error) and, for failures, every expected error's
// document, path and a fragment of its message. The fuzz test starts from the same files.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { isWeftError } from '../../../src/errors.js';
import type { FieldError } from '../../../src/errors.js';
import { parseDocuments, validateBatch } from '../../../src/resources/index.js';
import { CORPUS_DIR, corpusInputs } from './corpus-files.js';

interface Expectation {
  outcome: 'valid' | 'invalid' | 'parse-error';
  documents?: number;
  errors?: { document: number; path: string; message: string }[];
}

function outcomeOf(
  text: string,
  source: string,
): { outcome: Expectation['outcome']; errors: FieldError[]; documents: number } {
  let documents: unknown[];
  try {
    documents = parseDocuments(text, source).documents;
  } catch (e) {
    if (!isWeftError(e, 'WEFT_E_PARSE')) throw e;
    return { outcome: 'parse-error', errors: e.errors, documents: 0 };
  }
  const result = validateBatch(documents);
  return result.ok
    ? { outcome: 'valid', errors: [], documents: result.resources.length }
    : { outcome: 'invalid', errors: result.errors, documents: documents.length };
}

for (const file of corpusInputs()) {
  test(`corpus: ${file}`, () => {
    const expectPath = `${CORPUS_DIR}${file.replace(/\.(ya?ml|json)$/, '')}.expect.json`;
    const expected = JSON.parse(readFileSync(expectPath, 'utf8')) as Expectation;
    const actual = outcomeOf(readFileSync(`${CORPUS_DIR}${file}`, 'utf8'), file);
    const shown = actual.errors.map((e) => `[${e.document}] ${e.path}: ${e.message}`).join('\n');
    assert.equal(actual.outcome, expected.outcome, shown);
    if (expected.documents !== undefined) assert.equal(actual.documents, expected.documents);
    if (expected.outcome === 'valid') return;
    const wanted = expected.errors ?? [];
    assert.equal(actual.errors.length, wanted.length, `wrong number of errors:\n${shown}`);
    for (const w of wanted) {
      const found = actual.errors.some(
        (e) => e.document === w.document && e.path === w.path && e.message.includes(w.message),
      );
      assert.ok(found, `missing [${w.document}] ${w.path}: …${w.message}…; got:\n${shown}`);
    }
  });
}
