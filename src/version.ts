// The version reported by `weft version` and `GET /version`, read from package.json once.
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

export const WEFT_VERSION: string = pkg.version;
