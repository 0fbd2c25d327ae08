// How the CA lives in the store. Two kinds of keys under /weft/ca/:
//   /weft/ca/state        the public part: trust domain, the active authority's certificates,
//                         a rotation's prepared authority (trusted, not signing yet) with when it
//                         activates, and the retiring authority's roots with the end of their overlap
//   /weft/ca/keys/<id>    the private key (PKCS#8 PEM) of the active authority, and of the
//                         prepared one while a rotation is being prepared; nothing else
// The transaction that makes a prepared authority active deletes the old one's key record, so a
// retired authority's key is gone from the current store at once (history and the file-store log
// keep it until they are compacted). Records are validated on every read. A state written before
// rotations had a preparation (no `prepared`, no `retiredAt`) reads as it is.
import { WeftError } from '../errors.js';
import { array, int, literal, object, string, type Infer, type Schema } from '../schema/schema.js';
import { trustDomainSchema } from './identity-schema.js';

export const CA_PREFIX = '/weft/ca/';
export const CA_STATE_KEY = '/weft/ca/state';
export const caKeyRecordKey = (id: string): string => `/weft/ca/keys/${id}`;

const pem = () => string({ minLength: 1 });
const authorityId = () =>
  string({ minLength: 1, maxLength: 64, format: { description: 'hex', test: /^[0-9a-f]+$/ } });

export const authorityCertsSchema = object({
  id: authorityId(),
  source: string({ enum: ['generated', 'supplied'] }),
  certificatePem: pem(),
  intermediatesPem: array(pem()),
  trustAnchorsPem: array(pem(), { minItems: 1 }),
  createdAt: int({ min: 0 }),
});

export const caStateSchema = object({
  version: literal(1),
  trustDomain: trustDomainSchema(),
  active: authorityCertsSchema,
  /**
   * A rotation's next authority while it is prepared: its roots are in the trust bundle, the
   * active authority still signs. From `activateAt` on it is the active one (every replica
   * reads it so by the time; maintain() then writes it so), and the active one retires.
   */
  prepared: object({
    authority: authorityCertsSchema,
    /** ms since the epoch; from then on it signs. */
    activateAt: int({ min: 0 }),
    /** How long the retiring roots stay trusted after activateAt (ms). */
    overlapMs: int({ min: 0 }),
  }).optional(),
  /** The previous authority while its roots stay trusted (a rotation's overlap). */
  retiring: object({
    id: authorityId(),
    trustAnchorsPem: array(pem(), { minItems: 1 }),
    /** ms since the epoch; from then on its roots leave the bundle. */
    trustedUntil: int({ min: 0 }),
    /** ms since the epoch; when it stopped signing (absent in states from before this was kept). */
    retiredAt: int({ min: 0 }).optional(),
  }).optional(),
});
export type CaState = Infer<typeof caStateSchema>;

export const caKeyRecordSchema = object({ id: authorityId(), privateKeyPem: pem() });
export type CaKeyRecord = Infer<typeof caKeyRecordSchema>;

/** Parses a stored JSON record; a record that does not fit is store corruption, reported by field. */
export function decodeRecord<T>(schema: Schema<T>, key: string, value: string): T {
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    throw new WeftError('WEFT_E_STORE_CORRUPT', `${key} is not JSON; restore it from a backup`);
  }
  const result = schema.validate(json);
  if (result.ok) return result.value;
  const lines = result.errors.map((e) => `${e.path || '(record)'}: ${e.message}`);
  throw new WeftError(
    'WEFT_E_STORE_CORRUPT',
    `${key} does not hold a valid record (${lines.join('; ')}); restore it from a backup`,
    result.errors,
  );
}
