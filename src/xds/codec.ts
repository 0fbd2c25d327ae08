// The control plane's side of the xDS codec: the strict resource encoder, the wire-level
// DiscoveryResponse builder and the DiscoveryRequest decoder, on protobufjs. Decoding resources
// (for clients and tests alike) is client-codec.ts's, on Weft's own wire codec.
//
// protobufjs's fromObject silently drops fields it does not know, so a compiler typo such as
// `lb_polcy` would ship a valid-looking but wrong Cluster. Every object is therefore walked
// against its message type first, and every problem is reported with its field path.
//
// Responses are assembled from pre-encoded parts: the Any of a resource is encoded once per
// resource object (cached by identity) and spliced into every stream's DiscoveryResponse.
import { createHash } from 'node:crypto';
import protobuf from 'protobufjs';
import { WeftError, type FieldError } from '../errors.js';
import { messageType } from './protos.js';
import { lengthDelimited, stringField } from './client-codec.js';

// What clients use lives in client-codec.ts; the control plane and tests reach it from here too.
export {
  decodeDiscoveryResponse,
  decodeResource,
  discoveryRequestBytes,
  encodeDiscoveryRequest,
  lengthDelimited,
  readDiscoveryResponseHeader,
  resourceName,
  stringField,
  structFromJson,
  structToJson,
  type DiscoveryResponseHeader,
  type DiscoveryResponseMessage,
} from './client-codec.js';

const ANY = '.google.protobuf.Any';
const TYPE_PREFIX = 'type.googleapis.com/';

/** The plain-object form of the contract (what decodeResource also produces), for the node. */
const TO_OBJECT: protobuf.IConversionOptions = {
  enums: String,
  longs: Number,
  bytes: String,
  json: true, // expands Any into `{'@type', …fields}`
};

// ---------------------------------------------------------------------------------------------
// Strict shape check

const INT32 = { min: -0x80000000, max: 0x7fffffff };
const UINT32 = { min: 0, max: 0xffffffff };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Uint8Array) return 'bytes';
  return typeof v === 'string'
    ? `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`
    : typeof v;
}

function checkScalar(type: string, v: unknown): string | undefined {
  switch (type) {
    case 'string':
      return typeof v === 'string' ? undefined : `expected a string, got ${describe(v)}`;
    case 'bool':
      return typeof v === 'boolean' ? undefined : `expected a boolean, got ${describe(v)}`;
    case 'double':
    case 'float':
      return typeof v === 'number' ? undefined : `expected a number, got ${describe(v)}`;
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return checkInt(v, INT32.min, INT32.max);
    case 'uint32':
    case 'fixed32':
      return checkInt(v, UINT32.min, UINT32.max);
    case 'int64':
    case 'sint64':
    case 'sfixed64':
      return checkLong(v, true);
    case 'uint64':
    case 'fixed64':
      return checkLong(v, false);
    case 'bytes':
      if (v instanceof Uint8Array) return undefined;
      return typeof v === 'string' && /^[A-Za-z0-9+/_-]*={0,2}$/.test(v)
        ? undefined
        : `expected bytes (Uint8Array or base64 string), got ${describe(v)}`;
    default:
      return `unsupported scalar type ${type}`;
  }
}

function checkInt(v: unknown, min: number, max: number): string | undefined {
  if (typeof v !== 'number' || !Number.isInteger(v)) return `expected an integer, got ${describe(v)}`;
  return v < min || v > max ? `integer ${v} out of range [${min}, ${max}]` : undefined;
}

function checkLong(v: unknown, signed: boolean): string | undefined {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) return `expected a safe integer (or a decimal string), got ${v}`;
    return !signed && v < 0 ? `expected an unsigned integer, got ${v}` : undefined;
  }
  if (typeof v === 'string') {
    return (signed ? /^-?\d+$/ : /^\d+$/).test(v) ? undefined : `expected a decimal integer string, got ${v}`;
  }
  return `expected an integer, got ${describe(v)}`;
}

function checkMapKey(keyType: string, key: string): string | undefined {
  if (keyType === 'string') return undefined;
  if (keyType === 'bool')
    return key === 'true' || key === 'false' ? undefined : `map key ${key}: expected bool`;
  return /^-?\d+$/.test(key) ? undefined : `map key ${key}: expected an integer`;
}

function checkValue(field: protobuf.Field, v: unknown, path: string, errors: FieldError[]): void {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Enum) {
    if (typeof v === 'string' ? !(v in rt.values) : typeof v !== 'number' || !(v in rt.valuesById)) {
      errors.push({
        path,
        message: `expected one of ${Object.keys(rt.values).join(', ')}, got ${describe(v)}`,
      });
    }
  } else if (rt instanceof protobuf.Type) {
    checkMessage(rt, v, path, errors);
  } else {
    const problem = checkScalar(field.type, v);
    if (problem) errors.push({ path, message: problem });
  }
}

function checkMessage(type: protobuf.Type, obj: unknown, path: string, errors: FieldError[]): void {
  if (!isPlainObject(obj)) {
    errors.push({ path, message: `expected a ${type.fullName.slice(1)} object, got ${describe(obj)}` });
    return;
  }
  if (type.fullName === ANY && '@type' in obj) {
    checkAny(obj, path, errors);
    return;
  }
  const setOneofs = new Map<string, string>();
  for (const [key, v] of Object.entries(obj)) {
    const at = path === '' ? key : `${path}.${key}`;
    const field = type.fields[key];
    if (!field) {
      errors.push({ path: at, message: `unknown field of ${type.fullName.slice(1)}` });
      continue;
    }
    if (v === undefined || v === null) continue; // unset, as protobufjs reads it
    if (field.partOf) {
      const other = setOneofs.get(field.partOf.name);
      if (other !== undefined) {
        errors.push({ path: at, message: `oneof ${field.partOf.name} already set by ${other}` });
      }
      setOneofs.set(field.partOf.name, key);
    }
    if (field instanceof protobuf.MapField) {
      if (!isPlainObject(v)) {
        errors.push({ path: at, message: `expected a map (plain object), got ${describe(v)}` });
        continue;
      }
      for (const [k, item] of Object.entries(v)) {
        const keyProblem = checkMapKey(field.keyType, k);
        if (keyProblem) errors.push({ path: at, message: keyProblem });
        checkValue(field, item, `${at}[${JSON.stringify(k)}]`, errors);
      }
    } else if (field.repeated) {
      if (!Array.isArray(v)) {
        errors.push({ path: at, message: `expected an array, got ${describe(v)}` });
        continue;
      }
      v.forEach((item, i) => checkValue(field, item, `${at}[${i}]`, errors));
    } else {
      checkValue(field, v, at, errors);
    }
  }
}

function checkAny(obj: Record<string, unknown>, path: string, errors: FieldError[]): void {
  const typeUrl = obj['@type'];
  const at = path === '' ? '@type' : `${path}.@type`;
  if (typeof typeUrl !== 'string' || !typeUrl.startsWith(TYPE_PREFIX)) {
    errors.push({ path: at, message: `expected "${TYPE_PREFIX}<message name>", got ${describe(typeUrl)}` });
    return;
  }
  let inner: protobuf.Type;
  try {
    inner = messageType(typeUrl);
  } catch {
    errors.push({ path: at, message: `unknown message type ${typeUrl} (not loaded in src/xds/protos.ts)` });
    return;
  }
  const { '@type': _drop, ...rest } = obj;
  checkMessage(inner, rest, path, errors);
}

/** Every problem in `obj` as an instance of the message type, with field paths; empty if none. */
export function checkShape(typeUrl: string, obj: unknown): FieldError[] {
  const errors: FieldError[] = [];
  checkMessage(messageType(typeUrl), obj, '', errors);
  return errors;
}

// ---------------------------------------------------------------------------------------------
// Resources

/** The bytes of `obj` as the given message type (what goes inside an Any's `value`). */
export function encodeResource(typeUrl: string, obj: object): Uint8Array {
  const type = messageType(typeUrl);
  const errors = checkShape(typeUrl, obj);
  if (errors.length > 0) {
    const name = typeUrl.slice(typeUrl.lastIndexOf('.') + 1);
    const list = errors.map((e) => `${e.path}: ${e.message}`).join('; ');
    throw new WeftError('WEFT_E_INTERNAL', `invalid ${name} for xDS (a compiler bug): ${list}`, errors);
  }
  return type.encode(type.fromObject(obj)).finish();
}

// ---------------------------------------------------------------------------------------------
// Wire format: DiscoveryResponse from pre-encoded parts

/** One resource, encoded once and shared by every stream that receives it. */
export interface EncodedResource {
  readonly name: string;
  /** DiscoveryResponse field 2: the whole `resources` entry (tag, length, Any). */
  readonly field: Buffer;
  /** Hash of the encoded resource; equal hash means the proxy already has this content. */
  readonly hash: string;
}

const encodedCache = new WeakMap<object, EncodedResource>();

/**
 * The encoding of a resource object, cached by object identity: resource objects handed to the
 * ADS server are treated as immutable, so a changed resource must be a new object.
 */
export function encodeForResponse(typeUrl: string, name: string, obj: object): EncodedResource {
  const hit = encodedCache.get(obj);
  if (hit !== undefined && hit.name === name) return hit;
  const value = encodeResource(typeUrl, obj);
  const any = Buffer.concat([stringField(1, typeUrl), lengthDelimited(2, value)]);
  const hash = createHash('sha256').update(typeUrl).update(value).digest('base64');
  const encoded: EncodedResource = { name, field: lengthDelimited(2, any), hash };
  encodedCache.set(obj, encoded);
  return encoded;
}

const typeUrlFields = new Map<string, Buffer>();
const versionFields = new Map<string, Buffer>();

/**
 * DiscoveryResponse bytes: version_info (1), resources (2), type_url (4), nonce (5),
 * control_plane (6). Only the nonce is new per call; the rest are cached or pre-encoded.
 */
export function buildDiscoveryResponse(
  version: string,
  resources: readonly EncodedResource[],
  typeUrl: string,
  nonce: string,
  controlPlane: Buffer,
): Buffer {
  let versionField = versionFields.get(version);
  if (versionField === undefined) {
    // Versions change rarely; keep only the recent ones so the map cannot grow without bound.
    if (versionFields.size > 64) versionFields.clear();
    versionField = stringField(1, version);
    versionFields.set(version, versionField);
  }
  let typeField = typeUrlFields.get(typeUrl);
  if (typeField === undefined) {
    typeField = stringField(4, typeUrl);
    typeUrlFields.set(typeUrl, typeField);
  }
  const nonceField = stringField(5, nonce);
  let total = versionField.length + typeField.length + nonceField.length + controlPlane.length;
  for (const r of resources) total += r.field.length;
  const out = Buffer.allocUnsafe(total);
  let o = 0;
  out.set(versionField, o);
  o += versionField.length;
  for (const r of resources) {
    out.set(r.field, o);
    o += r.field.length;
  }
  out.set(typeField, o);
  o += typeField.length;
  out.set(nonceField, o);
  o += nonceField.length;
  out.set(controlPlane, o);
  return out;
}

/** DiscoveryResponse field 6 (envoy.config.core.v3.ControlPlane {identifier = 1}). */
export function controlPlaneField(identifier: string): Buffer {
  return identifier === '' ? Buffer.alloc(0) : lengthDelimited(6, stringField(1, identifier));
}

// ---------------------------------------------------------------------------------------------
// Discovery messages

const DISCOVERY_REQUEST = 'envoy.service.discovery.v3.DiscoveryRequest';
const NODE = 'envoy.config.core.v3.Node';

/** The fields of a DiscoveryRequest the server reads, with protobuf defaults filled in. */
export interface DiscoveryRequestMessage {
  version_info: string;
  node: NodeMessage | null;
  resource_names: string[];
  type_url: string;
  response_nonce: string;
  error_detail: { code: number; message: string } | null;
}

/** envoy.config.core.v3.Node in plain-object form; absent fields were unset on the wire. */
export interface NodeMessage {
  id?: string;
  cluster?: string;
  metadata?: { fields?: Record<string, unknown> } | null;
  user_agent_name?: string;
  user_agent_version?: string;
  locality?: { region?: string; zone?: string; sub_zone?: string } | null;
}

export function decodeDiscoveryRequest(bytes: Uint8Array): DiscoveryRequestMessage {
  const type = messageType(DISCOVERY_REQUEST);
  // Decoded messages carry proto3 defaults on their prototype, so unset fields read as ''/[].
  const m = type.decode(bytes) as unknown as DiscoveryRequestMessage;
  // The node goes through toObject: on a decoded Message, oneof members such as Value's
  // `stringValue` read as defaults from the prototype, which would confuse structToJson.
  const node = m.node ? (messageType(NODE).toObject(m.node as never, TO_OBJECT) as NodeMessage) : null;
  return {
    version_info: m.version_info,
    node,
    resource_names: m.resource_names,
    type_url: m.type_url,
    response_nonce: m.response_nonce,
    error_detail: m.error_detail ?? null,
  };
}
