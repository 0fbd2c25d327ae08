// Who may open an xDS stream, and for which node. The xDS port is TLS 1.3 with the control
// plane's own SVID; a proxy proves who it is with its X.509-SVID as the client certificate, or,
// before it has one (an Envoy whose agent has not fetched it yet), with a join token sent as
// `authorization: Bearer weft-jt-…` metadata (checked, not used up). An identity is then served
// only nodes of its own namespace (and of its own service account when the node names one), as
// Istio's xDS authorization does: a stolen or misused credential of one namespace cannot pull
// another namespace's configuration. Secrets are not at stake: SDS serves only the trust bundle,
// and no private key ever reaches the control plane.

import * as grpc from '@grpc/grpc-js';
import type { SecureContextOptions } from 'node:tls';
import { TOKEN_PREFIX, type WorkloadIdentity } from '../ca/index.js';
import { WeftError } from '../errors.js';
import type { AdsCall, StreamAuthorizer, StreamGrant } from '../xds/ads-server.js';
import type { NodeInfo } from '../xds/types.js';
import { workloadOf } from './api-auth.js';
import type { ControlPlaneIdentity, ServingCredentials } from './identity.js';
import { nodeView } from './xds-source.js';

export const XDS_CREDENTIALS_HELP =
  "the xDS port needs the proxy's X.509-SVID as its TLS client certificate, or a join token " +
  'as `authorization: Bearer weft-jt-…` call metadata';

function contextOptions(c: ServingCredentials): SecureContextOptions {
  return { key: c.privateKeyPem, cert: c.chainPem, ca: c.trustBundlePem, minVersion: 'TLSv1.3' };
}

/**
 * gRPC server credentials serving the control plane's SVID, replaced in place at each renewal
 * (connections already open keep theirs). A client certificate is asked for but not required at
 * the handshake, so that a join token can stand in for it; the authorizer decides.
 */
export class XdsServerCredentials extends grpc.ServerCredentials {
  constructor(serving: ServingCredentials) {
    super({ requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' }, contextOptions(serving));
  }

  update(serving: ServingCredentials): void {
    this.updateSecureContextOptions(contextOptions(serving));
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

const deny = (code: grpc.status, details: string): StreamGrant => ({ ok: false, code, details });

/** The identity a stream proves: its verified client certificate, else a join token. */
async function proven(
  call: AdsCall,
  identity: ControlPlaneIdentity,
): Promise<
  | (WorkloadIdentity & { spiffeId: string; expiresAt: number; onRevoked?: (cb: () => void) => () => void })
  | StreamGrant
> {
  const trustDomain = identity.ca.trustDomain;
  try {
    // grpc-js reports a certificate only when it verified against the trust bundle.
    const cert = call.getAuthContext().sslPeerCertificate;
    if (cert !== undefined) return { ...workloadOf(cert, trustDomain), expiresAt: Date.parse(cert.valid_to) };
    const header = call.metadata.get('authorization')[0];
    const m = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (m === null || !m[1]!.startsWith(TOKEN_PREFIX))
      return deny(grpc.status.UNAUTHENTICATED, XDS_CREDENTIALS_HELP);
    const grant = await identity.tokens.verify(m[1]!);
    return {
      namespace: grant.namespace,
      serviceAccount: grant.serviceAccount,
      spiffeId: identity.ca.spiffeIdFor(grant),
      expiresAt: grant.expiresAt,
      onRevoked: (cb) => identity.tokens.onRevoked(grant.tokenId, cb),
    };
  } catch (e) {
    if (e instanceof WeftError)
      return deny(grpc.status.UNAUTHENTICATED, `${e.message}; ${XDS_CREDENTIALS_HELP}`);
    throw e;
  }
}

/** The service account of the Workload a node says it is (WORKLOAD_NAME), if there is one. */
export type WorkloadAccount = (namespace: string, name: string) => string | undefined;

/**
 * Whether `who` may receive `node`'s configuration: same namespace; and, where the node names a
 * service account (SERVICE_ACCOUNT) or a registered Workload (WORKLOAD_NAME, whose inbound
 * listeners and policies it would get), that account must be its own.
 */
export function mayServe(
  who: WorkloadIdentity & { spiffeId: string },
  node: NodeInfo,
  workloadAccount: WorkloadAccount = () => undefined,
): StreamGrant {
  const namespace = nodeView(node).namespace;
  if (namespace !== who.namespace) {
    return deny(
      grpc.status.PERMISSION_DENIED,
      `${who.spiffeId} may not receive the configuration of node "${node.id}" of namespace ` +
        `"${namespace}": an identity is served only nodes of its own namespace (node metadata NAMESPACE)`,
    );
  }
  const sa = node.metadata.SERVICE_ACCOUNT;
  if (typeof sa === 'string' && sa !== '' && sa !== who.serviceAccount) {
    return deny(
      grpc.status.PERMISSION_DENIED,
      `${who.spiffeId} may not receive the configuration of node "${node.id}" of service account ` +
        `"${sa}" (node metadata SERVICE_ACCOUNT)`,
    );
  }
  const workload = node.metadata.WORKLOAD_NAME;
  const account = typeof workload === 'string' ? workloadAccount(namespace, workload) : undefined;
  if (account !== undefined && account !== who.serviceAccount) {
    return deny(
      grpc.status.PERMISSION_DENIED,
      `${who.spiffeId} may not receive the configuration of Workload ${namespace}/${String(workload)}, ` +
        `which runs as service account "${account}" (node metadata WORKLOAD_NAME)`,
    );
  }
  return { ok: true, identity: who.spiffeId };
}

/** The authorizer of the TLS xDS port. */
export function xdsAuthorizer(
  identity: ControlPlaneIdentity,
  workloadAccount?: WorkloadAccount,
): StreamAuthorizer {
  return async (call, node) => {
    const who = await proven(call, identity);
    if ('ok' in who) return who;
    const grant = mayServe(who, node, workloadAccount);
    return grant.ok ? { ...grant, expiresAt: who.expiresAt, onRevoked: who.onRevoked } : grant;
  };
}
