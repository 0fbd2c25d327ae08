// `weft cert request`: an X.509-SVID for a person or a tool, bought with a join token exactly as a
// sidecar buys its first one (the key is made here and never sent; the token's CA pin is checked
// before the token leaves this process). With the default identity,
// spiffe://<td>/ns/weft-system/sa/weft-admin, the certificate is an admin credential on the
// control plane's TLS API: `weft --server https://… --certificate-authority B --client-certificate C
// --client-key K apply -f …`.

import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createLogger } from '../log.js';
import { IdentityClient, type JoinInfo } from '../sidecar/identity-client.js';
import { CliError, request } from './client.js';

export interface CertRequestFlags {
  serviceAccount: string;
  namespace: string;
  tokenFile?: string;
  outDir: string;
  /** --certificate-authority: roots to trust instead of /api/v1/info's (still held to the pin). */
  certificateAuthority?: string;
}

/**
 * Writes `content` to `file` by way of a new file beside it, created with its final mode, then
 * renamed over: the file is never seen half-written or with a looser mode, and a symbolic link
 * planted at `file` is replaced, not followed.
 */
function writeAtomically(file: string, content: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, content, { mode, flag: 'wx' });
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new CliError(`cannot write ${file}: ${(e as Error).message}`);
  }
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
  const logger = createLogger('cert');
  // Its warnings matter here (a token without a CA pin trusts the plain-HTTP answer); the rest
  // is the sidecar's chatter.
  logger.level = 'warn';
  const caFile = opts.certificateAuthority ?? process.env.WEFT_CERTIFICATE_AUTHORITY;
  let given: { pem: string; source: string } | undefined;
  if (caFile !== undefined) {
    try {
      given = { pem: readFileSync(caFile, 'utf8'), source: `--certificate-authority ${caFile}` };
    } catch (e) {
      throw new CliError(`--certificate-authority ${caFile}: ${(e as Error).message}`);
    }
  }
  const identity = new IdentityClient({
    info,
    namespace: opts.namespace,
    serviceAccount: opts.serviceAccount,
    token,
    logger,
    ...(given === undefined ? {} : { trustBundle: given }),
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
  // The key last: a key never sits beside a certificate that is not its own.
  writeAtomically(files.cert, svid.chainPem, 0o644);
  writeAtomically(files.bundle, svid.trustBundlePem, 0o644);
  writeAtomically(files.key, svid.privateKeyPem, 0o600);
  console.error(`${svid.spiffeId}, valid until ${svid.notAfter.toISOString()} (renew by requesting again)`);
  console.error(
    `use it: weft --server ${info.workloadApi} --certificate-authority ${files.bundle} ` +
      `--client-certificate ${files.cert} --client-key ${files.key} <command>`,
  );
  console.log(`key: ${files.key}`);
  console.log(`cert: ${files.cert}`);
  console.log(`bundle: ${files.bundle}`);
}
