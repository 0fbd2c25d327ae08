// Workload identities for tests: as a sidecar gets one (a join token, then a key and CSR to the
// control plane's workload API), or straight from a CA of the test's own, for mTLS tests that
// need no control plane.
import { CertificateAuthority } from '../../src/ca/authority.js';
import { newWorkloadKey, workloadCsr } from '../../src/ca/pkcs10.js';
import { silentLogger } from '../../src/log.js';
import { IdentityClient, type JoinInfo } from '../../src/sidecar/identity-client.js';
import { MemoryStore } from '../../src/store/memory-store.js';

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

export interface IssuedSvid {
  id: string;
  key: string;
  cert: string;
}

/** A CA in memory (trust domain weft.local), its trust bundle, and SVIDs from it by service account. */
export async function memoryCa(): Promise<{
  bundle: string;
  issue(serviceAccount: string): Promise<IssuedSvid>;
}> {
  const ca = await CertificateAuthority.open({
    store: new MemoryStore(),
    trustDomain: 'weft.local',
    logger: silentLogger(),
  });
  const issue = async (serviceAccount: string): Promise<IssuedSvid> => {
    const key = newWorkloadKey();
    const id = `spiffe://weft.local/ns/default/sa/${serviceAccount}`;
    const svid = await ca.sign({
      csr: workloadCsr(key, id),
      identity: { namespace: 'default', serviceAccount },
    });
    return { id, key: key.privateKeyPem, cert: svid.chainPem };
  };
  return { bundle: (await ca.trustBundle()).join(''), issue };
}
