#!/usr/bin/env node
// `weft`: the one binary. Subcommands: control-plane, apply, get, delete, proxies, token, ca,
// version, demo, sidecar, run.
// Output follows kubectl (`httproute/echo configured`); errors go to stderr naming the file,
// document and field; any failure exits non-zero.
//
// This file only declares the commands and their flags; each action imports its implementation
// when it runs. A long-lived `weft sidecar` then holds only the sidecar's code: loading the
// control plane, the resource parsers and YAML as well would cost every sidecar several MiB.

import { Command, Option } from 'commander';
import { WEFT_VERSION } from '../version.js';
import { isWeftError } from '../errors.js';
import { CliError, serverUrl, useAdminToken, useClientTls } from './client.js';
import { sidecarFlags, type SidecarFlags } from './sidecar-flags.js';
import type { ControlPlaneFlags } from './control-plane-command.js';
import type { CaRotateFlags } from './ca-commands.js';
import { tuneHeapForSidecar } from './sidecar-heap.js';

// Options of the program itself are recognised after a subcommand's name too, so none may share
// a name with a subcommand's option (the program would take it): hence kubectl's
// --certificate-authority and --client-certificate here, beside the sidecar's --trust-bundle.
const program = new Command('weft')
  .description('Weft: a service mesh speaking Envoy xDS v3')
  .version(WEFT_VERSION, '--client-version', 'print the CLI version')
  .addOption(new Option('--server <url>', 'control plane API URL (env WEFT_SERVER)').default(undefined))
  .addOption(
    new Option('--admin-token <token>', 'admin token of the control plane (env WEFT_ADMIN_TOKEN)').default(
      undefined,
    ),
  )
  .addOption(
    new Option(
      '--certificate-authority <file>',
      "roots of the control plane's TLS API, for an https:// --server (env WEFT_CERTIFICATE_AUTHORITY)",
    ).default(undefined),
  )
  .addOption(
    new Option(
      '--client-certificate <file>',
      'client certificate for the TLS API, e.g. an admin SVID from `weft cert request` (env WEFT_CLIENT_CERTIFICATE)',
    ).default(undefined),
  )
  .addOption(new Option('--client-key <file>', 'its private key (env WEFT_CLIENT_KEY)').default(undefined))
  .showHelpAfterError()
  .configureOutput({ outputError: (str, write) => write(str) });

function server(): string {
  const opts = program.opts<{
    server?: string;
    adminToken?: string;
    certificateAuthority?: string;
    clientCertificate?: string;
    clientKey?: string;
  }>();
  useAdminToken(opts.adminToken);
  useClientTls(opts);
  return serverUrl(opts.server);
}

program
  .command('control-plane')
  .description('run the control plane: REST API, xDS server, embedded store')
  .option('--data-dir <dir>', 'where the embedded store keeps its files', './weft-data')
  .option('--api-addr <host:port>', 'REST API address (port 0 picks a free port)', '127.0.0.1:15080')
  .option(
    '--xds-addr <host:port>',
    'xDS (ADS gRPC) address: TLS, each proxy authenticated by its SVID or join token (port 0 picks a free port)',
    '127.0.0.1:15010',
  )
  .option(
    '--xds-plaintext-addr <host:port>',
    'also serve xDS without TLS or authentication, for proxyless gRPC clients (keep it on loopback)',
  )
  .option('--trust-domain <domain>', 'SPIFFE trust domain of this mesh', 'weft.local')
  .option('--workload-api-addr <host:port>', 'TLS API for sidecars (default: the API host, a free port)')
  .option(
    '--admin-spiffe-id <id...>',
    'SPIFFE IDs whose client certificates act as the admin token on the TLS API ' +
      '(default spiffe://<trust-domain>/ns/weft-system/sa/weft-admin)',
  )
  .option(
    '--open-reads',
    'let anyone read resources, proxies and watches (writes still need the admin token)',
  )
  .option('--svid-ttl <duration>', 'lifetime of issued SVIDs: 24h, 30m, 60s (at least 1m)', '24h')
  .option('--ca-cert <file>', 'bring your own CA: PEM certificate (root or intermediate) that signs SVIDs')
  .option('--ca-key <file>', 'bring your own CA: its PEM private key')
  .option('--ca-bundle <file>', 'bring your own CA: PEM root(s) to trust, when --ca-cert is an intermediate')
  .action(async (opts: ControlPlaneFlags) => {
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
    const { runApply } = await import('./api-commands.js');
    await runApply(server(), opts);
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
      const { runGet } = await import('./api-commands.js');
      await runGet(server(), kind, name, opts);
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
      const { runDelete } = await import('./api-commands.js');
      await runDelete(server(), kind, name, opts);
    },
  );

program
  .command('proxies')
  .description('connected proxies and whether they ACKed or NACKed their config')
  .option('-o, --output <format>', 'table or json', 'table')
  .action(async (opts: { output: string }) => {
    const { runProxies } = await import('./api-commands.js');
    await runProxies(server(), opts);
  });

const token = program
  .command('token')
  .description('join tokens: what a workload proves its identity with at first');
token
  .command('create')
  .description('a join token for one service account; printed on the last line, only once')
  .requiredOption('--service-account <sa>', 'service account the token entitles')
  .option('-n, --namespace <ns>', 'namespace the token entitles', 'default')
  .option('--ttl <duration>', 'how long it is valid: 24h, 90m, 45s', '24h')
  .option('--max-uses <n>', 'how many workloads may use it (0 = any number until it expires)', '1')
  .action(async (opts: { serviceAccount: string; namespace: string; ttl: string; maxUses: string }) => {
    const { runTokenCreate } = await import('./token-commands.js');
    await runTokenCreate(server(), opts);
  });
token
  .command('list')
  .description('join tokens (never their secrets)')
  .option('-o, --output <format>', 'table or json', 'table')
  .action(async (opts: { output: string }) => {
    const { runTokenList } = await import('./token-commands.js');
    await runTokenList(server(), opts);
  });
token
  .command('revoke')
  .description('revoke a join token, by id or by the token itself')
  .argument('<id-or-token>')
  .action(async (which: string) => {
    const { runTokenRevoke } = await import('./token-commands.js');
    await runTokenRevoke(server(), which);
  });

program
  .command('cert')
  .description('X.509-SVIDs for people and tools')
  .command('request')
  .description(
    'an SVID bought with a join token (key made here, never sent); by default the admin identity, ' +
      "an admin credential on the control plane's TLS API",
  )
  .option('--service-account <sa>', 'service account of the identity', 'weft-admin')
  .option('-n, --namespace <ns>', 'namespace of the identity', 'weft-system')
  .option('--token-file <file>', 'the join token (env WEFT_TOKEN)')
  .option('--out-dir <dir>', 'where key.pem (0600), cert.pem and bundle.pem are written', '.')
  .action(async (opts: { serviceAccount: string; namespace: string; tokenFile?: string; outDir: string }) => {
    const { runCertRequest } = await import('./cert-commands.js');
    const { certificateAuthority } = program.opts<{ certificateAuthority?: string }>();
    await runCertRequest(server(), { ...opts, ...(certificateAuthority ? { certificateAuthority } : {}) });
  });

const ca = program
  .command('ca')
  .description("the control plane's certificate authority: status and root rotation");
ca.command('status')
  .description('the active root, a rotation in progress and its next step, and which proxies have the bundle')
  .option('-o, --output <format>', 'table or json', 'table')
  .action(async (opts: { output: string }) => {
    const { runCaStatus } = await import('./ca-commands.js');
    await runCaStatus(server(), opts);
  });
ca.command('rotate')
  .description(
    'rotate the root: the new root is first trusted everywhere, then signs, then the old root is dropped',
  )
  .option(
    '--prepare <duration>',
    'how long the new root is trusted before it signs (default: half the SVID lifetime)',
  )
  .option(
    '--overlap <duration>',
    'how long the old root stays trusted after that (default: twice the SVID lifetime; at least the SVID lifetime)',
  )
  .option('--ca-cert <file>', 'bring your own CA: PEM certificate (root or intermediate) to rotate to')
  .option('--ca-key <file>', 'bring your own CA: its PEM private key (sent only over https or loopback)')
  .option('--ca-bundle <file>', 'bring your own CA: PEM root(s), when --ca-cert is an intermediate')
  .option('-o, --output <format>', 'table or json', 'table')
  .action(async (opts: CaRotateFlags) => {
    const { runCaRotate } = await import('./ca-commands.js');
    await runCaRotate(server(), opts);
  });
ca.command('finish')
  .description(
    "end a rotation's overlap now: the old root leaves every trust bundle, its SVIDs stop verifying",
  )
  .option('-o, --output <format>', 'table or json', 'table')
  .action(async (opts: { output: string }) => {
    const { runCaFinish } = await import('./ca-commands.js');
    await runCaFinish(server(), opts);
  });

program
  .command('version')
  .description('print the CLI and control plane versions')
  .option('--client', 'only the CLI version; do not contact the control plane')
  .action(async (opts: { client?: boolean }) => {
    const { runVersion } = await import('./api-commands.js');
    await runVersion(server, opts);
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
  async (flags: SidecarFlags) => {
    tuneHeapForSidecar();
    const { runSidecarCommand } = await import('./sidecar-command.js');
    await runSidecarCommand(flags);
  },
);

sidecarFlags(
  program
    .command('run')
    .description('run an app with its sidecar: ordering, HTTP_PROXY, draining and exit status handled')
    .argument('<command...>', 'the app command, after --'),
).action(async (command: string[], flags: SidecarFlags) => {
  tuneHeapForSidecar();
  const { runRunCommand } = await import('./sidecar-command.js');
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

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof CliError || isWeftError(e)) {
    const code = (e as { code?: string }).code;
    console.error(`error: ${e.message}${code ? ` [${code}]` : ''}`);
  } else {
    console.error(`error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }
  process.exit(1);
});
