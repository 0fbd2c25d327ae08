// Where the seed corpus lives, shared by the corpus regression test and the fuzz test.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// Compiled to dist/test/unit/resources/; the corpus stays in the source tree.
export const CORPUS_DIR = fileURLToPath(new URL('../../../../test/corpus/resources/', import.meta.url));

export function corpusInputs(): string[] {
  return readdirSync(CORPUS_DIR)
    .filter((f) => /\.(ya?ml|json)$/.test(f) && !f.endsWith('.expect.json'))
    .sort();
}
