#!/usr/bin/env node
// `weft`: the one binary. Subcommands: control-plane, apply, get, delete, proxies, version, demo.
// Output follows kubectl (`httproute/echo configured`); errors go to stderr naming the file,
// document and field; any failure exits non-zero.

import { Command, Option } from 'commander';
import { stringify } from 'yaml';
import { WEFT_VERSION } from '../version.js';
import { isWeftError } from '../errors.js';
import { CliError, request, serverUrl } from './client.js';
import { describeErrors, readDocuments, where, type SourcedDocuments } from './files.js';
import { formatTable, type ListedObject } from './table.js';
import { runRunCommand, runSidecarCommand, sidecarFlags } from './sidecar-command.js';

const program = new Command('weft')
  .description('Weft: a service mesh speaking Envoy xDS v3')
  .version(WEFT_VERSION, '--client-version', 'print the CLI version')
  .addOption(new Option('--server <url>', 'control plane API URL (env WEFT_SERVER)').default(undefined))
  .showHelpAfterError()
  .configureOutput({ outputError: (str, write) => write(str) });

function server(): string {
  return serverUrl(program.opts<{ server?: string }>().server);
}

interface ApplyResponse {
  results: Array<{ kind: string; namespace: string; name: string; action: string; resourceVersion: string }>;
  warnings: Array<{ document: number; message: string }>;
}

program
  .command('control-plane')
  .description('run the control plane: REST API, xDS server, embedded store')
  .option('--data-dir <dir>', 'where the embedded store keeps its files', './weft-data')
  .option('--api-addr <host:port>', 'REST API address (port 0 picks a free port)', '127.0.0.1:15080')
  .option('--xds-addr <host:port>', 'xDS (ADS gRPC) address (port 0 picks a free port)', '127.0.0.1:15010')
  .option('--trust-domain <domain>', 'SPIFFE trust domain of this mesh', 'weft.local')
  .action(async (opts: { dataDir: string; apiAddr: string; xdsAddr: string; trustDomain: string }) => {
    const { runControlPlaneCommand } = await import('./control-plane-command.js');
    await runControlPlaneCommand(opts);
  });

program
  .command('apply')
  .description('create or update resources from files (all documents succeed or none is stored)')
  .requiredOption('-f, --filename <path...>', 'file, directory, or - for standard input')
  .option('-R, --recursive', 'descend into sub-directories of a directory given to -f')
  .option('--dry-run', 'validate and report what would change, store nothing')
  .action(async (opts: { filename: string[]; recursive?: boolean; dryRun?: boolean }) => {
    const sourced = readDocuments(opts.filename, opts.recursive);
    const res = await withSource(sourced, () =>
      request<ApplyResponse>(server(), 'POST', `/api/v1/apply${opts.dryRun ? '?dryRun=true' : ''}`, {
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
  });

program
  .command('get')
  .description('list resources of a kind, or show one')
  .argument('<kind>', 'kind, plural or short name: workloads, services (svc), httproutes (hr), …')
  .argument('[name]', 'one resource')
  .option('-n, --namespace <ns>', 'namespace', 'default')
  .option('-A, --all-namespaces', 'list across all namespaces')
  .addOption(
    new Option('-o, --output <format>', 'output format').choices(['table', 'yaml', 'json']).default('table'),
  )
  .option('--resource-version <rv>', 'show an earlier version of the named resource')
  .action(
    async (
      kind: string,
      name: string | undefined,
      opts: { namespace: string; allNamespaces?: boolean; output: string; resourceVersion?: string },
    ) => {
      const k = encodeURIComponent(kind);
      let items: ListedObject[];
      if (name !== undefined) {
        const q = opts.resourceVersion ? `?resourceVersion=${encodeURIComponent(opts.resourceVersion)}` : '';
        const path = `/api/v1/resources/${k}/${encodeURIComponent(opts.namespace)}/${encodeURIComponent(name)}${q}`;
        items = [await request<ListedObject>(server(), 'GET', path)];
      } else {
        const q = opts.allNamespaces ? '' : `?namespace=${encodeURIComponent(opts.namespace)}`;
        items = (await request<{ items: ListedObject[] }>(server(), 'GET', `/api/v1/resources/${k}${q}`))
          .items;
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
    },
  );

program
  .command('delete')
  .description('delete one resource by kind and name, or every resource in files')
  .argument('[kind]', 'kind, plural or short name')
  .argument('[name]', 'resource name')
  .option('-n, --namespace <ns>', 'namespace', 'default')
  .option('-f, --filename <path...>', 'delete the resources named in these files')
  .option('-R, --recursive', 'descend into sub-directories of a directory given to -f')
  .action(
    async (
      kind: string | undefined,
      name: string | undefined,
      opts: { namespace: string; filename?: string[]; recursive?: boolean },
    ) => {
      let results: Array<{ kind: string; name: string }>;
      if (opts.filename) {
        if (kind !== undefined) throw new CliError('give either -f FILE or KIND NAME, not both');
        const sourced = readDocuments(opts.filename, opts.recursive);
        results = (
          await withSource(sourced, () =>
            request<{ results: Array<{ kind: string; name: string }> }>(server(), 'POST', '/api/v1/delete', {
              documents: sourced.documents,
            }),
          )
        ).results;
      } else {
        if (kind === undefined || name === undefined)
          throw new CliError('usage: weft delete KIND NAME, or weft delete -f FILE');
        const path = `/api/v1/resources/${encodeURIComponent(kind)}/${encodeURIComponent(opts.namespace)}/${encodeURIComponent(name)}`;
        results = [await request<{ kind: string; name: string }>(server(), 'DELETE', path)];
      }
      for (const r of results) console.log(`${r.kind.toLowerCase()}/${r.name} deleted`);
    },
  );

program
  .command('proxies')
  .description('connected proxies and whether they ACKed or NACKed their config')
  .option('-o, --output <format>', 'table or json', 'table')
  .action(async (opts: { output: string }) => {
    const { items } = await request<{ items: ProxyRow[] }>(server(), 'GET', '/api/v1/proxies');
    if (opts.output === 'json') return void console.log(JSON.stringify(items, null, 2));
    if (items.length === 0) return void console.error('No proxies connected.');
    const rows = items.map((p) => {
      const types = Object.entries(p.types);
      const nack = types.find(([, t]) => t.lastNack);
      const short = (u: string): string => u.slice(u.lastIndexOf('.') + 1);
      return [
        p.node.id,
        p.peer,
        types.map(([u, t]) => `${short(u)}:${t.pending ? 'SENT' : t.ackedVersion ? 'ACKED' : '-'}`).join(' '),
        nack ? `${short(nack[0])}: ${nack[1].lastNack!.message}` : '',
      ];
    });
    const header = ['NODE', 'PEER', 'STATUS', 'LAST NACK'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    for (const r of [header, ...rows])
      console.log(
        r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('   ')
          .trimEnd(),
      );
  });

interface ProxyRow {
  node: { id: string };
  peer: string;
  types: Record<string, { pending: boolean; ackedVersion: string; lastNack?: { message: string } }>;
}

program
  .command('version')
  .description('print the CLI and control plane versions')
  .option('--client', 'only the CLI version; do not contact the control plane')
  .action(async (opts: { client?: boolean }) => {
    console.log(`Client Version: ${WEFT_VERSION}`);
    if (opts.client) return;
    const { version } = await request<{ version: string }>(server(), 'GET', '/version');
    console.log(`Server Version: ${version}`);
  });

program
  .command('demo')
  .description('run the demo mesh (what npm start runs); --proxyless for the proxyless gRPC demo')
  .option('--proxyless', 'the proxyless gRPC demo instead: a grpc-js-xds client routed by a GRPCRoute')
  .option('--duration <seconds>', 'mesh demo: stop after this long (default: run until Ctrl-C)')
  .option('--interval <seconds>', 'mesh demo: time between requests', '1')
  .option('--data-dir <dir>', 'proxyless demo: store directory (default: a fresh temporary one)')
  .option('--calls <n>', 'proxyless demo: stop after this many calls (default: run until Ctrl-C)')
  .action(
    async (opts: {
      proxyless?: boolean;
      duration?: string;
      interval?: string;
      dataDir?: string;
      calls?: string;
    }) => {
      if (opts.proxyless) {
        const { runDemo } = await import('../demo/demo.js');
        await runDemo(opts);
      } else {
        const { runMeshDemo } = await import('../demo/mesh-demo.js');
        await runMeshDemo(opts);
      }
      process.exit(0);
    },
  );

sidecarFlags(program.command('sidecar').description('run the sidecar proxy next to an app')).action(
  async (flags: Parameters<typeof runSidecarCommand>[0]) => {
    await runSidecarCommand(flags);
  },
);

sidecarFlags(
  program
    .command('run')
    .description('run an app with its sidecar: ordering, HTTP_PROXY, draining and exit status handled')
    .argument('<command...>', 'the app command, after --'),
).action(async (command: string[], flags: Parameters<typeof runRunCommand>[0]) => {
  await runRunCommand(flags, command);
});

program
  .command('demo-app', { hidden: true })
  .description('the demo mesh app: answers with the call tree of the services it calls')
  .requiredOption('--service <name>', 'its service name')
  .option('--instance <name>', 'its instance name (default: the service name)')
  .requiredOption('--port <port>', 'where it listens (on 127.0.0.1)')
  .option('--calls <services>', 'comma-separated services to call for each request', '')
  .action(async (opts: { service: string; instance?: string; port: string; calls: string }) => {
    const { startTreeApp } = await import('../demo/tree-app.js');
    const server = await startTreeApp({
      service: opts.service,
      instance: opts.instance ?? opts.service,
      port: Number(opts.port),
      calls: opts.calls.split(',').filter((c) => c !== ''),
    });
    const stop = (): void => void server.close(() => process.exit(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });

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

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof CliError || isWeftError(e)) {
    const code = (e as { code?: string }).code;
    console.error(`error: ${e.message}${code ? ` [${code}]` : ''}`);
  } else {
    console.error(`error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }
  process.exit(1);
});
