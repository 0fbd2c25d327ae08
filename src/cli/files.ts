// Reads the files given to `-f` (a file, a directory's *.yaml|*.yml|*.json, or `-` for stdin)
// into one list of documents, remembering where each came from so that a server error about
// "document 7" can be reported as "routes.yaml, document 2".

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocuments } from '../resources/index.js';
import { isWeftError } from '../errors.js';
import { CliError } from './client.js';

export interface SourcedDocuments {
  documents: unknown[];
  /** For each document: its file, its YAML document's index there, its item in a List. */
  origins: Array<{ file: string; index: number; item?: number }>;
}

function filesOf(target: string, recursive: boolean): string[] {
  if (target === '-') return ['-'];
  let st;
  try {
    st = statSync(target);
  } catch {
    throw new CliError(`${target}: no such file or directory`);
  }
  if (!st.isDirectory()) return [target];
  const out: string[] = [];
  for (const name of readdirSync(target).sort()) {
    const p = join(target, name);
    if (statSync(p).isDirectory()) {
      if (recursive) out.push(...filesOf(p, true));
    } else if (/\.(ya?ml|json)$/.test(name)) {
      out.push(p);
    }
  }
  return out;
}

export function readDocuments(targets: string[], recursive = false): SourcedDocuments {
  const result: SourcedDocuments = { documents: [], origins: [] };
  for (const target of targets) {
    for (const file of filesOf(target, recursive)) {
      const name = file === '-' ? '<stdin>' : file;
      const text = readFileSync(file === '-' ? 0 : file, 'utf8');
      let parsed: ReturnType<typeof parseDocuments>;
      try {
        parsed = parseDocuments(text, name);
      } catch (e) {
        if (isWeftError(e)) {
          const lines = e.errors.map((fe) => {
            // The parser words positions as `file:line:col: text`; say it the way people read it.
            const m = /^.*:(\d+):(\d+): ([\s\S]*)$/.exec(fe.message);
            const text = m ? `line ${m[1]}, column ${m[2]}: ${m[3]}` : fe.message;
            return `${name}: document ${fe.document ?? 0}: ${text}`;
          });
          throw new CliError(lines.length > 0 ? lines.join('\n') : `${name}: ${e.message}`, e.code);
        }
        throw e;
      }
      parsed.documents.forEach((d, i) => {
        const origin = parsed.origins[i]!;
        result.documents.push(d);
        result.origins.push({
          file: name,
          index: origin.document,
          ...(origin.item === undefined ? {} : { item: origin.item }),
        });
      });
    }
  }
  if (result.documents.length === 0) throw new CliError(`no documents found in ${targets.join(', ')}`);
  return result;
}

/** `routes.yaml: document 2 (HTTPRoute echo): spec.rules[0]…: message` for each error. */
export function describeErrors(err: CliError, sourced: SourcedDocuments): string {
  if (err.errors.length === 0) return err.message;
  return err.errors
    .map((fe) => {
      const origin = fe.document !== undefined ? sourced.origins[fe.document] : undefined;
      const doc = fe.document !== undefined ? sourced.documents[fe.document] : undefined;
      const at = origin ? `${where(origin)}${label(doc)}: ` : '';
      return `${at}${fe.path}: ${fe.message}`;
    })
    .join('\n');
}

/** `file: document N` or, for an item of a `kind: List`, `file: document N, item M`. */
export function where(origin: { file: string; index: number; item?: number }): string {
  return `${origin.file}: document ${origin.index}${origin.item === undefined ? '' : `, item ${origin.item}`}`;
}

function label(doc: unknown): string {
  const d = doc as { kind?: unknown; metadata?: { name?: unknown } } | null;
  if (typeof d?.kind === 'string' && typeof d.metadata?.name === 'string')
    return ` (${d.kind} ${d.metadata.name})`;
  return '';
}
