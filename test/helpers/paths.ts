// Paths into the source tree from compiled tests (dist/test/...): golden files, corpora and
// fixtures stay in the source tree and are read from there.
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The repository root, whether running from dist/test/** or test/**. */
export const REPO_ROOT: string = (() => {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const i = here.lastIndexOf(`${'/'}dist${'/'}`);
  return i >= 0 ? here.slice(0, i) : join(here, '..', '..');
})();

export function repoPath(...parts: string[]): string {
  return join(REPO_ROOT, ...parts);
}

/** The compiled CLI entry point, for tests that start real `weft` processes. */
export const WEFT_BIN: string = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
