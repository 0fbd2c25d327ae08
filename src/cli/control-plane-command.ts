// `weft control-plane`: starts the control plane, prints where it listens (one `key: value` line
// each, which scripts and tests read), and shuts down cleanly on SIGINT/SIGTERM.

import { resolve } from 'node:path';
import { createLogger } from '../log.js';
import { WEFT_VERSION } from '../version.js';
import { startControlPlane } from '../control-plane/control-plane.js';

export async function runControlPlaneCommand(opts: {
  dataDir: string;
  apiAddr: string;
  xdsAddr: string;
  trustDomain: string;
}): Promise<void> {
  const logger = createLogger('control-plane');
  const cp = await startControlPlane({ ...opts, logger });
  console.log(`weft control-plane ${WEFT_VERSION}`);
  console.log(`data-dir: ${resolve(opts.dataDir)}`);
  console.log(`trust-domain: ${opts.trustDomain}`);
  console.log(`xds: ${cp.xdsAddress}`);
  console.log(`api: ${cp.apiUrl}`);
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
