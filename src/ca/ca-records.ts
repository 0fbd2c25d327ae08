// How the CA lives in the store. Two kinds of keys under /weft/ca/:
//   /weft/ca/state        the public part: trust domain, the active authority's certificates,
//                         and the retiring authority's roots with the end of their overlap
//   /weft/ca/keys/<id>    the active authority's private key (PKCS#8 PEM), nothing else
// A rotation replaces the key record in the same transaction that changes the state, so a
// retired authority's key is gone from the current store at once (history and the file-store log
// keep it until they are compacted). Records are validated on every read.
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
  /** The previous authority while its roots stay trusted (a rotation's overlap). */
  retiring: object({
    id: authorityId(),
    trustAnchorsPem: array(pem(), { minItems: 1 }),
    /** ms since the epoch; from then on its roots leave the bundle. */
    trustedUntil: int({ min: 0 }),
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
