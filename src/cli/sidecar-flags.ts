// The flags `weft sidecar` and `weft run` share, declared apart from the commands themselves so
// that main.ts can list them (for --help and parsing) without loading the sidecar.

import { Option, type Command } from 'commander';

export interface SidecarFlags {
  service: string;
  version?: string;
  label: string[];
  namespace: string;
  name?: string;
  serviceAccount?: string;
  tokenFile?: string;
  trustBundle?: string;
  appPort?: string;
  protocol: string;
  controlPlane?: string;
  xdsAddr?: string;
  outboundAddr: string;
  inboundAddr: string;
  adminAddr: string;
  advertiseAddr?: string;
  upstream: string[];
  drainTimeout: string;
  appStartTimeout: string;
  leaseTtl: string;
}

const collect = (v: string, all: string[]): string[] => [...all, v];

/** The flags `weft sidecar` and `weft run` share. */
export function sidecarFlags(cmd: Command): Command {
  return cmd
    .requiredOption('--service <name>', 'service this workload belongs to (label app)')
    .option('--version <v>', 'label version (e.g. v2)')
    .option('--label <k=v>', 'another label (repeatable)', collect, [])
    .option('-n, --namespace <ns>', 'namespace', 'default')
    .option('--name <name>', 'workload name (default: service-host-port-pid)')
    .option('--service-account <sa>', 'identity of the workload (default: the service name)')
    .option('--token-file <file>', 'join token for the first SVID (env WEFT_TOKEN); see `weft token create`')
    .option(
      '--trust-bundle <file>',
      "PEM root(s) to trust for the control plane instead of its /api/v1/info's (env WEFT_TRUST_BUNDLE)",
    )
    .option('--app-port <port>', 'where the app listens on 127.0.0.1 (absent: a client-only job)')
    .addOption(
      new Option('--protocol <p>', 'the app port protocol')
        .choices(['HTTP', 'HTTP2', 'GRPC', 'TCP'])
        .default('HTTP'),
    )
    .option('--control-plane <url>', 'control plane API URL (env WEFT_SERVER)')
    .option('--xds-addr <host:port>', 'xDS address (default: asked from the control plane)')
    .option('--outbound-addr <host:port>', 'HTTP proxy for the app', '127.0.0.1:15001')
    .option('--inbound-addr <host:port>', 'where mesh traffic arrives', '0.0.0.0:15006')
    .option('--admin-addr <host:port>', 'admin endpoint (/ready, /config_dump, /clusters)', '127.0.0.1:15020')
    .option('--advertise-addr <ip>', 'address other proxies reach the inbound listener at')
    .option('--upstream <svc:port=local>', 'an opaque TCP upstream on a local port (repeatable)', collect, [])
    .option('--drain-timeout <seconds>', 'longest graceful shutdown', '10')
    .option('--app-start-timeout <seconds>', 'how long to wait for the app to listen on --app-port', '60')
    .option('--lease-ttl <seconds>', 'registration lease; the endpoint goes this long after a crash', '10');
}
