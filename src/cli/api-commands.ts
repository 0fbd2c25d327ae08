// The commands that talk to the control plane's REST API: apply, get, delete, proxies, version.
// main.ts declares their flags and loads this module only when one of them runs, so that
// `weft sidecar` never loads the resource parsers, YAML or the table printer.

import { stringify } from 'yaml';
import { WEFT_VERSION } from '../version.js';
import { CliError, request } from './client.js';
import { describeErrors, readDocuments, where, type SourcedDocuments } from './files.js';
import { formatTable, type ListedObject } from './table.js';

interface ApplyResponse {
  results: Array<{ kind: string; namespace: string; name: string; action: string; resourceVersion: string }>;
  warnings: Array<{ document: number; message: string }>;
}

export async function runApply(
  server: string,
  opts: { filename: string[]; recursive?: boolean; dryRun?: boolean },
): Promise<void> {
  const sourced = readDocuments(opts.filename, opts.recursive);
  const res = await withSource(sourced, () =>
    request<ApplyResponse>(server, 'POST', `/api/v1/apply${opts.dryRun ? '?dryRun=true' : ''}`, {
      documents: sourced.documents,
    }),
  );
  for (const r of res.results) {
    console.log(`${r.kind.toLowerCase()}/${r.name} ${r.action}${opts.dryRun ? ' (dry run)' : ''}`);
  }
  for (const w of res.warnings) {
    const o = sourced.origins[w.document];
    console.error(`Warning: ${o ? `${where(o)}: ` : ''}${w.message}`);
  }
}

export async function runGet(
  server: string,
  kind: string,
  name: string | undefined,
  opts: { namespace: string; allNamespaces?: boolean; output: string; resourceVersion?: string },
): Promise<void> {
  const k = encodeURIComponent(kind);
  let items: ListedObject[];
  if (name !== undefined) {
    const q = opts.resourceVersion ? `?resourceVersion=${encodeURIComponent(opts.resourceVersion)}` : '';
    const path = `/api/v1/resources/${k}/${encodeURIComponent(opts.namespace)}/${encodeURIComponent(name)}${q}`;
    items = [await request<ListedObject>(server, 'GET', path)];
  } else {
    const q = opts.allNamespaces ? '' : `?namespace=${encodeURIComponent(opts.namespace)}`;
    items = (await request<{ items: ListedObject[] }>(server, 'GET', `/api/v1/resources/${k}${q}`)).items;
  }
  if (opts.output === 'json') {
    console.log(JSON.stringify(name !== undefined ? items[0] : { items }, null, 2));
  } else if (opts.output === 'yaml') {
    process.stdout.write(items.map((i) => stringify(i)).join('---\n'));
  } else if (items.length === 0) {
    console.error(`No resources found${opts.allNamespaces ? '' : ` in ${opts.namespace} namespace`}.`);
  } else {
    process.stdout.write(formatTable(items, Boolean(opts.allNamespaces)));
  }
}

export async function runDelete(
  server: string,
  kind: string | undefined,
  name: string | undefined,
  opts: { namespace: string; filename?: string[]; recursive?: boolean },
): Promise<void> {
  let results: Array<{ kind: string; name: string }>;
  if (opts.filename) {
    if (kind !== undefined) throw new CliError('give either -f FILE or KIND NAME, not both');
    const sourced = readDocuments(opts.filename, opts.recursive);
    results = (
      await withSource(sourced, () =>
        request<{ results: Array<{ kind: string; name: string }> }>(server, 'POST', '/api/v1/delete', {
          documents: sourced.documents,
        }),
      )
    ).results;
  } else {
    if (kind === undefined || name === undefined)
      throw new CliError('usage: weft delete KIND NAME, or weft delete -f FILE');
    const path = `/api/v1/resources/${encodeURIComponent(kind)}/${encodeURIComponent(opts.namespace)}/${encodeURIComponent(name)}`;
    results = [await request<{ kind: string; name: string }>(server, 'DELETE', path)];
  }
  for (const r of results) console.log(`${r.kind.toLowerCase()}/${r.name} deleted`);
}

interface ProxyRow {
  node: { id: string };
  peer: string;
  identity?: string;
  types: Record<string, { pending: boolean; ackedVersion: string; lastNack?: { message: string } }>;
}

export async function runProxies(server: string, opts: { output: string }): Promise<void> {
  const { items } = await request<{ items: ProxyRow[] }>(server, 'GET', '/api/v1/proxies');
  if (opts.output === 'json') return void console.log(JSON.stringify(items, null, 2));
  if (items.length === 0) return void console.error('No proxies connected.');
  const rows = items.map((p) => {
    const types = Object.entries(p.types);
    const nack = types.find(([, t]) => t.lastNack);
    const short = (u: string): string => u.slice(u.lastIndexOf('.') + 1);
    return [
      p.node.id,
      p.peer,
      p.identity ?? '',
      types.map(([u, t]) => `${short(u)}:${t.pending ? 'SENT' : t.ackedVersion ? 'ACKED' : '-'}`).join(' '),
      nack ? `${short(nack[0])}: ${nack[1].lastNack!.message}` : '',
    ];
  });
  const header = ['NODE', 'PEER', 'IDENTITY', 'STATUS', 'LAST NACK'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [header, ...rows])
    console.log(
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('   ')
        .trimEnd(),
    );
}

export async function runVersion(server: () => string, opts: { client?: boolean }): Promise<void> {
  console.log(`Client Version: ${WEFT_VERSION}`);
  if (opts.client) return;
  const { version } = await request<{ version: string }>(server(), 'GET', '/version');
  console.log(`Server Version: ${version}`);
}

async function withSource<T>(sourced: SourcedDocuments, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof CliError && e.errors.length > 0) {
      throw new CliError(describeErrors(e, sourced), e.code);
    }
    throw e;
  }
}
