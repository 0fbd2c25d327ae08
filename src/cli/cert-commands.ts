// `weft cert request`: an X.509-SVID for a person or a tool, bought with a join token exactly as a
// sidecar buys its first one (the key is made here and never sent; the token's CA pin is checked
// before the token leaves this process). With the default identity,
// spiffe://<td>/ns/weft-system/sa/weft-admin, the certificate is an admin credential on the
// control plane's TLS API: `weft --server https://… --certificate-authority B --client-certificate C
// --client-key K apply -f …`.

import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { silentLogger } from '../log.js';
import { IdentityClient, type JoinInfo } from '../sidecar/identity-client.js';
import { CliError, request } from './client.js';

export interface CertRequestFlags {
  serviceAccount: string;
  namespace: string;
  tokenFile?: string;
  outDir: string;
}

function joinToken(tokenFile: string | undefined): string {
  if (tokenFile !== undefined) {
    try {
      return readFileSync(tokenFile, 'utf8').trim();
    } catch (e) {
      throw new CliError(`--token-file ${tokenFile}: ${(e as Error).message}`);
    }
  }
  const t = process.env.WEFT_TOKEN?.trim();
  if (!t)
    throw new CliError(
      'a join token is needed: --token-file FILE or WEFT_TOKEN (make one with ' +
        '`weft token create --service-account weft-admin -n weft-system`)',
    );
  return t;
}

export async function runCertRequest(server: string, opts: CertRequestFlags): Promise<void> {
  const token = joinToken(opts.tokenFile);
  const info = await request<JoinInfo>(server, 'GET', '/api/v1/info');
  const identity = new IdentityClient({
    info,
    namespace: opts.namespace,
    serviceAccount: opts.serviceAccount,
    token,
    logger: silentLogger(),
  });
  let svid;
  try {
    svid = await identity.start();
  } catch (e) {
    throw new CliError((e as Error).message, (e as { code?: string }).code);
  } finally {
    identity.close();
  }
  const dir = resolve(opts.outDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files = { key: join(dir, 'key.pem'), cert: join(dir, 'cert.pem'), bundle: join(dir, 'bundle.pem') };
  writeFileSync(files.key, svid.privateKeyPem, { mode: 0o600 });
  chmodSync(files.key, 0o600); // an existing file keeps its mode on write
  writeFileSync(files.cert, svid.chainPem, { mode: 0o644 });
  writeFileSync(files.bundle, svid.trustBundlePem, { mode: 0o644 });
  console.error(`${svid.spiffeId}, valid until ${svid.notAfter.toISOString()} (renew by requesting again)`);
  console.error(
    `use it: weft --server ${info.workloadApi} --certificate-authority ${files.bundle} ` +
      `--client-certificate ${files.cert} --client-key ${files.key} <command>`,
  );
  console.log(`key: ${files.key}`);
  console.log(`cert: ${files.cert}`);
  console.log(`bundle: ${files.bundle}`);
}
