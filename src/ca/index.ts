// Zero-trust identity for the mesh: the certificate authority that signs SPIFFE X.509-SVIDs from
// workload CSRs, join tokens that entitle a workload to its first SVID, and the workload-side
// helpers (key pair and CSR) that sidecars use. Reference: docs/identity.md.
export {
  CertificateAuthority,
  DEFAULT_SVID_TTL_MS,
  MIN_SVID_TTL_MS,
  MAX_SVID_TTL_MS,
  DEFAULT_ROOT_TTL_MS,
  type CertificateAuthorityOptions,
  type SignRequest,
  type IssuedSvid,
  type CaStatus,
  type CaStats,
  type AuthorityInfo,
} from './authority.js';
export type { SuppliedCa } from './ca-material.js';
export {
  CA_PIN_PREFIX,
  bundlePins,
  caPinOf,
  isCaPin,
  isTokenSecret,
  pinnedToken,
  splitJoinToken,
} from './ca-pin.js';
export { CA_PREFIX, CA_STATE_KEY } from './ca-records.js';
export {
  CSR_MAX_BYTES,
  CSR_REFUSAL_REASONS,
  CSR_REFUSAL_CODES,
  csrRefusalReason,
  parseCsr,
  checkCsrIdentity,
  type CsrRefusalReason,
  type ParsedCsr,
} from './csr.js';
export { ALLOWED_KEYS } from './key-policy.js';
export {
  JoinTokens,
  TOKEN_PREFIX,
  TOKENS_PREFIX,
  DEFAULT_TOKEN_TTL_MS,
  TOKEN_REFUSAL_REASONS,
  type CreateTokenOptions,
  type CreateTokenRequest,
  type CreatedToken,
  type TokenGrant,
  type TokenInfo,
  type TokenRefusalReason,
} from './join-tokens.js';
export {
  CONTROL_PLANE_IDENTITY,
  parseSpiffeId,
  workloadSpiffeId,
  type SpiffeId,
  type WorkloadIdentity,
} from './spiffe-id.js';
export { workloadIdentitySchema } from './identity-schema.js';
export { renewalTime } from './svid.js';
export { generateWorkloadKey, createCsr, type WorkloadKey } from './workload-key.js';
