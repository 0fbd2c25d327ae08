// Keeps the field tables of docs/resources.md generated from the schemas, so the reference cannot
// drift from the validator. Tables sit between `<!-- fields:Kind -->` and `<!-- /fields -->`;
// the prose and examples around them are written by hand. Run this module to rewrite the file.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describeFields } from '../schema/schema.js';
import { KINDS } from './index.js';
import type { KindDefinition } from './kind.js';

const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderFieldTable(kind: KindDefinition): string {
  const rows = describeFields(kind.schema).filter((r) => r.field !== 'apiVersion' && r.field !== 'kind');
  const lines = ['| Field | Type | Required | Default | Description |', '|---|---|---|---|---|'];
  for (const row of rows) {
    const fallback = row.default === undefined ? '' : `\`${JSON.stringify(row.default)}\``;
    lines.push(
      `| \`${row.field}\` | ${cell(row.type).replace(/`/g, '\\`')} | ${row.required ? 'yes' : ''} | ${cell(fallback)} | ${cell(row.description ?? '')} |`,
    );
  }
  return lines.join('\n');
}

const SECTION = /<!-- fields:(\w+) -->[\s\S]*?<!-- \/fields -->/g;

/** The markdown with every generated section replaced by the current table. */
export function updateReferenceDoc(markdown: string): string {
  return markdown.replace(SECTION, (whole, kindName: string) => {
    const kind = KINDS.find((k) => k.kind === kindName);
    if (!kind) return whole;
    // Prettier would re-pad the table and make it differ from what is generated.
    const table = `<!-- prettier-ignore-start -->\n${renderFieldTable(kind)}\n<!-- prettier-ignore-end -->`;
    return `<!-- fields:${kindName} -->\n${table}\n<!-- /fields -->`;
  });
}

// Compiled to dist/src/resources/; the doc lives in the source tree.
export const REFERENCE_DOC_PATH = fileURLToPath(new URL('../../../docs/resources.md', import.meta.url));

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(REFERENCE_DOC_PATH, updateReferenceDoc(readFileSync(REFERENCE_DOC_PATH, 'utf8')));
}
