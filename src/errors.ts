// Typed errors with stable codes. Users search for the code; the message says what to do.
// `status` is the HTTP status the API answers with when the error reaches it.

export type WeftErrorCode =
  | 'WEFT_E_VALIDATION'
  | 'WEFT_E_PARSE'
  | 'WEFT_E_UNKNOWN_KIND'
  | 'WEFT_E_DUPLICATE'
  | 'WEFT_E_CONFLICT'
  | 'WEFT_E_NOT_FOUND'
  | 'WEFT_E_BAD_REQUEST'
  | 'WEFT_E_TOO_LARGE'
  | 'WEFT_E_STORE_CORRUPT'
  | 'WEFT_E_STORE_FOREIGN'
  | 'WEFT_E_STORE_LOCKED'
  | 'WEFT_E_STORE_CLOSED'
  | 'WEFT_E_COMPACTED'
  | 'WEFT_E_LEASE_NOT_FOUND'
  | 'WEFT_E_UNAVAILABLE'
  | 'WEFT_E_INTERNAL'
  // Identity (src/ca): CSR refusals, join-token refusals, CA material and rotation.
  | 'WEFT_E_CSR_TOO_LARGE'
  | 'WEFT_E_CSR_MALFORMED'
  | 'WEFT_E_CSR_KEY_NOT_ALLOWED'
  | 'WEFT_E_CSR_BAD_SIGNATURE'
  | 'WEFT_E_CSR_WRONG_IDENTITY'
  | 'WEFT_E_TOKEN_UNKNOWN'
  | 'WEFT_E_TOKEN_EXPIRED'
  | 'WEFT_E_TOKEN_REVOKED'
  | 'WEFT_E_TOKEN_USED_UP'
  | 'WEFT_E_CA_MATERIAL'
  | 'WEFT_E_CA_ROTATION'
  | 'WEFT_E_UNAUTHENTICATED'
  | 'WEFT_E_FORBIDDEN'
  // A workload bootstrapping its trust in the control plane (src/sidecar/bootstrap-trust.ts).
  | 'WEFT_E_CA_PIN_MISMATCH'
  | 'WEFT_E_CONTROL_PLANE_UNTRUSTED';

const STATUS: Record<WeftErrorCode, number> = {
  WEFT_E_VALIDATION: 422,
  WEFT_E_PARSE: 400,
  WEFT_E_UNKNOWN_KIND: 400,
  WEFT_E_DUPLICATE: 400,
  WEFT_E_CONFLICT: 409,
  WEFT_E_NOT_FOUND: 404,
  WEFT_E_BAD_REQUEST: 400,
  WEFT_E_TOO_LARGE: 413,
  WEFT_E_STORE_CORRUPT: 500,
  WEFT_E_STORE_FOREIGN: 500,
  WEFT_E_STORE_LOCKED: 500,
  WEFT_E_STORE_CLOSED: 503,
  WEFT_E_COMPACTED: 410,
  WEFT_E_LEASE_NOT_FOUND: 404,
  WEFT_E_UNAVAILABLE: 503,
  WEFT_E_INTERNAL: 500,
  WEFT_E_CSR_TOO_LARGE: 413,
  WEFT_E_CSR_MALFORMED: 400,
  WEFT_E_CSR_KEY_NOT_ALLOWED: 400,
  WEFT_E_CSR_BAD_SIGNATURE: 400,
  WEFT_E_CSR_WRONG_IDENTITY: 403,
  WEFT_E_TOKEN_UNKNOWN: 401,
  WEFT_E_TOKEN_EXPIRED: 401,
  WEFT_E_TOKEN_REVOKED: 401,
  WEFT_E_TOKEN_USED_UP: 401,
  WEFT_E_CA_MATERIAL: 422,
  WEFT_E_CA_ROTATION: 409,
  WEFT_E_UNAUTHENTICATED: 401,
  WEFT_E_FORBIDDEN: 403,
  // Raised by the workload about the control plane, never answered by the API; 502 as a proxy would.
  WEFT_E_CA_PIN_MISMATCH: 502,
  WEFT_E_CONTROL_PLANE_UNTRUSTED: 502,
};

/** One problem found in one document, at one field path. */
export interface FieldError {
  /** Dotted path with indices, e.g. `spec.rules[0].backendRefs[1].weight`. */
  path: string;
  message: string;
  /** Index of the document in the submitted batch, when there was a batch. */
  document?: number;
}

export class WeftError extends Error {
  readonly code: WeftErrorCode;
  readonly status: number;
  readonly errors: FieldError[];

  constructor(code: WeftErrorCode, message: string, errors: FieldError[] = []) {
    super(message);
    this.name = 'WeftError';
    this.code = code;
    this.status = STATUS[code];
    this.errors = errors;
  }

  toJSON(): { code: WeftErrorCode; message: string; errors?: FieldError[] } {
    return this.errors.length > 0
      ? { code: this.code, message: this.message, errors: this.errors }
      : { code: this.code, message: this.message };
  }
}

export function isWeftError(e: unknown, code?: WeftErrorCode): e is WeftError {
  return e instanceof WeftError && (code === undefined || e.code === code);
}
