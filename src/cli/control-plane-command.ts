// `weft control-plane`: starts the control plane, prints where it listens (one `key: value` line
// each, which scripts and tests read), and shuts down cleanly on SIGINT/SIGTERM.

import { resolve } from 'node:path';
import { createLogger } from '../log.js';
import { WEFT_VERSION } from '../version.js';
import { startControlPlane } from '../control-plane/control-plane.js';
import { parseTtl } from './token-commands.js';
import { CliError } from './client.js';
import { parseSpiffeId } from '../ca/spiffe-id.js';

export interface ControlPlaneFlags {
  dataDir: string;
  apiAddr: string;
  xdsAddr: string;
  xdsPlaintextAddr?: string;
  trustDomain: string;
  workloadApiAddr?: string;
  openReads?: boolean;
  adminSpiffeId?: string[];
  svidTtl: string;
  caCert?: string;
  caKey?: string;
  caBundle?: string;
}

export async function runControlPlaneCommand(opts: ControlPlaneFlags): Promise<void> {
  const logger = createLogger('control-plane');
  for (const id of opts.adminSpiffeId ?? []) {
    const parsed = parseSpiffeId(id);
    if (!parsed.ok || parsed.id.trustDomain !== opts.trustDomain)
      throw new CliError(
        `--admin-spiffe-id ${id}: must be a SPIFFE ID of trust domain ${opts.trustDomain}, ` +
          `e.g. spiffe://${opts.trustDomain}/ns/weft-system/sa/weft-admin` +
          (parsed.ok ? '' : ` (${parsed.problem})`),
      );
  }
  if ((opts.caCert === undefined) !== (opts.caKey === undefined))
    throw new CliError(
      '--ca-cert and --ca-key go together: give both, or neither to let the control plane make a root',
    );
  const cp = await startControlPlane({
    dataDir: opts.dataDir,
    apiAddr: opts.apiAddr,
    xdsAddr: opts.xdsAddr,
    trustDomain: opts.trustDomain,
    logger,
    openReads: opts.openReads ?? false,
    ...(opts.adminSpiffeId === undefined ? {} : { adminIdentities: opts.adminSpiffeId }),
    svidTtlMs: parseTtl(opts.svidTtl, '--svid-ttl') * 1000,
    ...(opts.xdsPlaintextAddr === undefined ? {} : { xdsPlaintextAddr: opts.xdsPlaintextAddr }),
    ...(opts.workloadApiAddr === undefined ? {} : { workloadApiAddr: opts.workloadApiAddr }),
    ...(opts.caCert === undefined || opts.caKey === undefined
      ? {}
      : {
          caFiles: {
            cert: opts.caCert,
            key: opts.caKey,
            ...(opts.caBundle === undefined ? {} : { bundle: opts.caBundle }),
          },
        }),
  });
  console.log(`weft control-plane ${WEFT_VERSION}`);
  console.log(`data-dir: ${resolve(opts.dataDir)}`);
  console.log(`trust-domain: ${opts.trustDomain}`);
  console.log(`xds: ${cp.xdsAddress}`);
  if (cp.xdsPlaintextAddress) console.log(`xds-plaintext: ${cp.xdsPlaintextAddress}`);
  console.log(`api: ${cp.apiUrl}`);
  console.log(`workload-api: ${cp.workloadApiUrl}`);
  console.log(`spiffe-id: ${cp.identity.spiffeId}`);
  if (cp.adminTokenPath) console.log(`admin-token: ${cp.adminTokenPath}`);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    cp.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}
