// Who is calling the REST API, and what they may do. Three credentials:
// - the admin token (`Authorization: Bearer weft-admin-…`): everything;
// - a join token (`Authorization: Bearer weft-jt-…`): only its first SVID (POST /api/v1/svids);
// - a workload's SVID as a TLS client certificate (on the workload listener): its own SVIDs,
//   leases it took, and Workloads of its own namespace and service account;
// - an admin client certificate: an SVID whose SPIFFE ID is one of the admin identities
//   (--admin-spiffe-id; by default spiffe://<td>/ns/weft-system/sa/weft-admin): everything.
// Without one, only /healthz, /version and /api/v1/info answer, and reads when the control plane
// was started with --open-reads.

import type { IncomingMessage } from 'node:http';
import { parseSpiffeId, TOKEN_PREFIX } from '../ca/index.js';
import { uriSans } from '../ca/spiffe-id.js';
import { WeftError } from '../errors.js';
import { tlsSocketOf } from '../http-util.js';
import type { AdminToken } from './admin-token.js';

export type Principal =
  | { kind: 'anonymous' }
  | { kind: 'admin' }
  | { kind: 'join-token'; token: string }
  | { kind: 'workload'; spiffeId: string; namespace: string; serviceAccount: string };

export const HOW_TO_AUTHENTICATE =
  'pass the admin token with --admin-token TOKEN or the WEFT_ADMIN_TOKEN environment variable ' +
  '(the control plane wrote it to <data-dir>/admin-token at its first start)';

/** The caller's principal; a credential that is present but wrong is a 401, not anonymous. */
export function principalOf(
  req: IncomingMessage,
  admin: AdminToken,
  trustDomain: string,
  adminIdentities: ReadonlySet<string> = new Set(),
): Principal {
  const header = req.headers.authorization;
  if (header !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) {
      throw new WeftError(
        'WEFT_E_UNAUTHENTICATED',
        `the Authorization header must be "Bearer TOKEN"; ${HOW_TO_AUTHENTICATE}`,
      );
    }
    const token = m[1]!;
    if (token.startsWith(TOKEN_PREFIX)) return { kind: 'join-token', token };
    if (admin.verify(token)) return { kind: 'admin' };
    throw new WeftError('WEFT_E_UNAUTHENTICATED', `the token is not the admin token; ${HOW_TO_AUTHENTICATE}`);
  }
  const socket = tlsSocketOf(req.socket);
  const cert = socket?.getPeerX509Certificate();
  if (socket === undefined || cert === undefined) return { kind: 'anonymous' };
  // A certificate the handshake did not verify (expired, another CA) is a wrong credential,
  // not a way to be anonymous.
  if (!socket.authorized)
    throw new WeftError(
      'WEFT_E_UNAUTHENTICATED',
      `the client certificate was not accepted (${String(socket.authorizationError ?? 'not verified')}); ` +
        'present a current X.509-SVID of this trust domain, or none',
    );
  // Verified at the handshake; a connection kept open may outlive the certificate.
  // (Not `<=`: an unreadable date is taken as expired.)
  if (!(Date.parse(cert.validTo) > Date.now()))
    throw new WeftError(
      'WEFT_E_UNAUTHENTICATED',
      `the client certificate expired at ${cert.validTo}; connect again with a current SVID`,
    );
  const workload = workloadOf(cert, trustDomain);
  return adminIdentities.has(workload.spiffeId) ? { kind: 'admin' } : workload;
}

type WorkloadPrincipal = Extract<Principal, { kind: 'workload' }>;

/**
 * The workload a verified client certificate names: its one URI SAN must be a SPIFFE ID of our
 * trust domain in the `/ns/N/sa/SA` form, else the certificate is refused (a 401, not anonymous).
 */
export function workloadOf(cert: Parameters<typeof uriSans>[0], trustDomain: string): WorkloadPrincipal {
  const uris = uriSans(cert);
  if (uris.length === 1) {
    const parsed = parseSpiffeId(uris[0]!);
    const id = parsed.ok ? parsed.id : undefined;
    const m = /^\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(id?.path ?? '');
    if (id && m && id.trustDomain === trustDomain)
      return { kind: 'workload', spiffeId: uris[0]!, namespace: m[1]!, serviceAccount: m[2]! };
  }
  throw new WeftError(
    'WEFT_E_UNAUTHENTICATED',
    `the client certificate is not an X.509-SVID of trust domain ${trustDomain}`,
  );
}

export function unauthenticated(what: string): WeftError {
  return new WeftError('WEFT_E_UNAUTHENTICATED', `${what} needs a credential; ${HOW_TO_AUTHENTICATE}`);
}

export function forbidden(principal: Principal, what: string): WeftError {
  const who =
    principal.kind === 'workload'
      ? `workload ${principal.spiffeId}`
      : principal.kind === 'join-token'
        ? 'a join token'
        : principal.kind;
  return new WeftError('WEFT_E_FORBIDDEN', `${who} may not ${what}`);
}
