// SPIFFE IDs (spec: SPIFFE-ID.md) and the one shape Weft issues to workloads:
// spiffe://<trust-domain>/ns/<namespace>/sa/<serviceAccount>. The namespace and service-account
// rules are the ones Workload resources already use, so any registered workload has a valid ID.
export const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const PATH_SEGMENT = /^[A-Za-z0-9._-]+$/;
export const MAX_TRUST_DOMAIN = 255;
const MAX_ID_BYTES = 2048;

/**
 * Who a workload is: what a join token or an existing SVID entitles it to. Validated where it
 * enters by workloadIdentitySchema (identity-schema.ts, kept apart so that a sidecar, which only
 * reads SPIFFE IDs, does not load the schema library).
 */
export interface WorkloadIdentity {
  namespace: string;
  serviceAccount: string;
}

/**
 * Who the control plane is: `spiffe://<td>/ns/weft-system/sa/weft-control-plane`. Fixed, so a
 * workload knows whom its TLS peer must be without taking it from the (plain HTTP) info answer.
 */
export const CONTROL_PLANE_IDENTITY: WorkloadIdentity = {
  namespace: 'weft-system',
  serviceAccount: 'weft-control-plane',
};

export interface SpiffeId {
  trustDomain: string;
  /** '' for a trust domain's own ID, else '/seg/seg…'. */
  path: string;
}

/** The workload SPIFFE ID; inputs are assumed valid (validated where they enter). */
export function workloadSpiffeId(trustDomain: string, id: WorkloadIdentity): string {
  return `spiffe://${trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

export function trustDomainSpiffeId(trustDomain: string): string {
  return `spiffe://${trustDomain}`;
}

/**
 * Parses a SPIFFE ID by the spec's rules (no port, user info, query, fragment or percent
 * escapes; no empty, "." or ".." segments; no trailing slash). Returns a reason when invalid.
 */
export function parseSpiffeId(uri: string): { ok: true; id: SpiffeId } | { ok: false; problem: string } {
  const bad = (problem: string) => ({ ok: false as const, problem });
  if (Buffer.byteLength(uri) > MAX_ID_BYTES) return bad(`longer than ${MAX_ID_BYTES} bytes`);
  if (!uri.startsWith('spiffe://')) return bad('the scheme must be "spiffe://"');
  const rest = uri.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash);
  if (trustDomain === '') return bad('the trust domain is empty');
  if (trustDomain.length > MAX_TRUST_DOMAIN || !TRUST_DOMAIN.test(trustDomain))
    return bad(
      `the trust domain "${trustDomain}" may only hold lowercase letters, digits, ".", "-" and "_" (at most 255)`,
    );
  if (path !== '') {
    const segments = path.slice(1).split('/');
    for (const seg of segments) {
      if (seg === '') return bad('the path has an empty segment or a trailing "/"');
      if (seg === '.' || seg === '..') return bad('the path has a "." or ".." segment');
      if (!PATH_SEGMENT.test(seg))
        return bad(`the path segment "${seg}" may only hold letters, digits, ".", "-" and "_"`);
    }
  }
  return { ok: true, id: { trustDomain, path } };
}

/** The URI subjectAltNames of a certificate, as node:crypto (X509Certificate) or node:tls renders them. */
export function uriSans(
  cert: { subjectAltName?: string | undefined; subjectaltname?: string } | undefined,
): string[] {
  return (cert?.subjectAltName ?? cert?.subjectaltname ?? '')
    .split(', ')
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
}

/**
 * A node:tls `checkServerIdentity` that holds the server to a SPIFFE ID instead of a host name:
 * its certificate must carry exactly one URI SAN, and `accepts` must take it. The error says what
 * `server` presented instead of `expected`, with `code` if given.
 */
export function spiffeServerCheck(
  accepts: (spiffeId: string) => boolean,
  describe: { server: string; expected: string; code?: string },
): (host: string, cert: Parameters<typeof uriSans>[0]) => Error | undefined {
  return (_host, cert) => {
    const ids = uriSans(cert);
    if (ids.length === 1 && accepts(ids[0]!)) return undefined;
    const err = new Error(
      `${describe.server} presented ${ids.join(', ') || 'no SPIFFE ID'}, not ${describe.expected}`,
    );
    return describe.code === undefined ? err : Object.assign(err, { code: describe.code });
  };
}
