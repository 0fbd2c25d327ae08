// Who is on the other end of a downstream connection, as the TLS layer verified it: the SPIFFE
// ID in the client certificate's URI SAN. Set on every request (and TCP connection) that came
// over mutual TLS; absent for plaintext (PERMISSIVE mode) or a client without a certificate.
// Authorization (RBAC) reads it; the forwarder passes it to the app in x-forwarded-client-cert.

export interface PeerIdentity {
  /** `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>` (or any SPIFFE ID). */
  spiffeId: string;
  trustDomain: string;
  /** From the `/ns/<ns>/sa/<sa>` path form; undefined for another path form. */
  namespace: string | undefined;
  serviceAccount: string | undefined;
  /** SHA-256 of the client certificate (DER), hex: XFCC's Hash. */
  certSha256: string;
}

/** The identity a URI SAN names, or undefined when it is not a SPIFFE ID. */
export function peerIdentityOf(uri: string, certSha256: string): PeerIdentity | undefined {
  const m = /^spiffe:\/\/([a-z0-9._-]+)(\/[^?#]*)?$/.exec(uri);
  if (!m) return undefined;
  const path = m[2] ?? '';
  const ns = /^\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(path);
  return {
    spiffeId: uri,
    trustDomain: m[1]!,
    namespace: ns?.[1],
    serviceAccount: ns?.[2],
    certSha256,
  };
}
