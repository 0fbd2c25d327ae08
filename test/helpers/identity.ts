// A workload identity as a sidecar gets one: a join token, then a key and CSR to the control
// plane's workload API; started, so it holds an SVID. The caller closes it.
import { silentLogger } from '../../src/log.js';
import { IdentityClient, type JoinInfo } from '../../src/sidecar/identity-client.js';

export async function startedIdentity(
  info: JoinInfo,
  serviceAccount: string,
  token: string,
): Promise<IdentityClient> {
  const id = new IdentityClient({
    info,
    namespace: 'default',
    serviceAccount,
    token,
    logger: silentLogger(),
  });
  await id.start();
  return id;
}
