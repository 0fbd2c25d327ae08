// The declared subset of Envoy: per message, the fields the Weft sidecar implements, written as
// data and checked by one walker. A field that is present but not declared is refused by name
// rather than ignored, because ignoring it would run a config the control plane did not ask for.
// The walker also checks value shapes, so the per-resource translators can read a checked
// object without defending against every malformed input again.
import { at, type ProblemSink } from './problems.js';

export type FieldSpec =
  | { t: 'string' }
  | { t: 'uint' }
  | { t: 'bool' }
  | { t: 'enum'; values: readonly string[] }
  | { t: 'message'; spec: MessageSpec }
  | { t: 'list'; of: FieldSpec; skip?: (item: unknown) => boolean }
  /** `keys` undefined: any key (a proto map keyed by names the config chooses). */
  | { t: 'map'; keys?: readonly string[]; of: FieldSpec }
  | { t: 'any'; types: Readonly<Record<string, MessageSpec>> };

export interface MessageSpec {
  fields: Readonly<Record<string, FieldSpec>>;
  /** Fields that must be present. */
  required?: readonly string[];
  /** Groups of which at most one may be set (proto oneofs), or exactly one when `required`. */
  oneOf?: ReadonlyArray<{ fields: readonly string[]; required?: boolean }>;
}

export const TYPE_PREFIX = 'type.googleapis.com/';

export const str: FieldSpec = { t: 'string' };
export const uint: FieldSpec = { t: 'uint' };
export const bool: FieldSpec = { t: 'bool' };
export const enumOf = (...values: string[]): FieldSpec => ({ t: 'enum', values });
export const message = (spec: MessageSpec): FieldSpec => ({ t: 'message', spec });
export const list = (of: FieldSpec, skip?: (item: unknown) => boolean): FieldSpec =>
  skip ? { t: 'list', of, skip } : { t: 'list', of };
export const mapOf = (keys: readonly string[], of: FieldSpec): FieldSpec => ({ t: 'map', keys, of });
/** A proto map with string keys of the config's choosing. */
export const mapOfAny = (of: FieldSpec): FieldSpec => ({ t: 'map', of });
/** An Any holding one of the given message types (full names, without the type URL prefix). */
export const anyOf = (types: Record<string, MessageSpec>): FieldSpec => ({ t: 'any', types });

/** An empty message: present or not, with no fields of its own (e.g. `ads: {}`). */
export const EMPTY: MessageSpec = { fields: {} };
export const DURATION: MessageSpec = { fields: { seconds: uint, nanos: uint } };
export const UINT32_VALUE: MessageSpec = { fields: { value: uint } };
export const BOOL_VALUE: MessageSpec = { fields: { value: bool } };

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Whether `v` is set in the decoded form (protobufjs leaves unset fields absent). */
function isSet(v: unknown): boolean {
  return v !== undefined && v !== null;
}

/** Checks `obj` against `spec`, reporting every violation under `path`. True when clean. */
export function checkMessage(spec: MessageSpec, obj: unknown, path: string, sink: ProblemSink): boolean {
  const before = sink.count;
  walkMessage(spec, obj, path, sink);
  return sink.count === before;
}

function walkMessage(spec: MessageSpec, obj: unknown, path: string, sink: ProblemSink): void {
  if (!isObject(obj)) {
    sink.add(path, 'expected an object');
    return;
  }
  for (const [key, v] of Object.entries(obj)) {
    if (!isSet(v)) continue;
    const fieldPath = at(path, key);
    const field = spec.fields[key];
    if (field === undefined) {
      sink.add(fieldPath, 'is not supported by the Weft sidecar');
      continue;
    }
    walkField(field, v, fieldPath, sink);
  }
  for (const name of spec.required ?? []) {
    if (!isSet(obj[name])) sink.add(at(path, name), 'is required');
  }
  for (const group of spec.oneOf ?? []) {
    const present = group.fields.filter((f) => isSet(obj[f]));
    if (present.length > 1) {
      sink.add(path, `only one of ${group.fields.join(', ')} may be set (found ${present.join(', ')})`);
    } else if (present.length === 0 && group.required === true) {
      sink.add(path, `one of ${group.fields.join(', ')} is required`);
    }
  }
}

function walkField(field: FieldSpec, v: unknown, path: string, sink: ProblemSink): void {
  switch (field.t) {
    case 'string':
      if (typeof v !== 'string') sink.add(path, 'expected a string');
      return;
    case 'uint':
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
        sink.add(path, 'expected a non-negative integer');
      }
      return;
    case 'bool':
      if (typeof v !== 'boolean') sink.add(path, 'expected a boolean');
      return;
    case 'enum':
      if (typeof v !== 'string') sink.add(path, 'expected an enum value name');
      else if (!field.values.includes(v)) {
        sink.add(
          path,
          `is ${v}, which is not supported by the Weft sidecar (supported: ${field.values.join(', ')})`,
        );
      }
      return;
    case 'message':
      walkMessage(field.spec, v, path, sink);
      return;
    case 'list':
      if (!Array.isArray(v)) {
        sink.add(path, 'expected a list');
        return;
      }
      // An index loop, not forEach: a sparse list's holes must be checked (and refused) too.
      for (let i = 0; i < v.length; i++) {
        const item: unknown = v[i];
        if (field.skip?.(item) !== true) walkField(field.of, item, at(path, i), sink);
      }
      return;
    case 'map':
      if (!isObject(v)) {
        sink.add(path, 'expected a map');
        return;
      }
      for (const [k, item] of Object.entries(v)) {
        if (field.keys !== undefined && !field.keys.includes(k))
          sink.add(at(path, k), 'is not supported by the Weft sidecar');
        else walkField(field.of, item, at(path, k), sink);
      }
      return;
    case 'any': {
      if (!isObject(v)) {
        sink.add(path, 'expected an object');
        return;
      }
      const typeName = anyTypeName(v);
      if (typeName === undefined) {
        sink.add(at(path, '@type'), 'is required');
        return;
      }
      const spec = field.types[typeName];
      if (spec === undefined) {
        const supported = Object.keys(field.types).join(', ');
        sink.add(
          path,
          `is ${typeName}, which is not supported by the Weft sidecar (supported: ${supported})`,
        );
        return;
      }
      const { '@type': _type, ...rest } = v;
      walkMessage(spec, rest, path, sink);
      return;
    }
  }
}

/** The message name inside an Any (`envoy.….Router`), or undefined when `@type` is missing. */
export function anyTypeName(v: unknown): string | undefined {
  if (!isObject(v)) return undefined;
  const t = v['@type'];
  if (typeof t !== 'string' || t === '') return undefined;
  return t.startsWith(TYPE_PREFIX) ? t.slice(TYPE_PREFIX.length) : t.slice(t.lastIndexOf('/') + 1);
}

/**
 * Every field path a spec declares, e.g. `filter_chains[].filters[].typed_config…`, for docs and
 * tests. A recursive message (RBAC's Permission holds Permissions) is listed once, not unrolled.
 */
export function declaredPaths(spec: MessageSpec, prefix = '', open = new Set<MessageSpec>()): string[] {
  const out: string[] = [];
  if (open.has(spec)) return out;
  open.add(spec);
  for (const [name, field] of Object.entries(spec.fields)) {
    const p = prefix === '' ? name : `${prefix}.${name}`;
    out.push(p);
    out.push(...fieldPaths(field, p, open));
  }
  open.delete(spec);
  return out;
}

function fieldPaths(field: FieldSpec, p: string, open: Set<MessageSpec>): string[] {
  switch (field.t) {
    case 'message':
      return declaredPaths(field.spec, p, open);
    case 'list':
      return fieldPaths(field.of, `${p}[]`, open);
    case 'map':
      return field.keys === undefined
        ? fieldPaths(field.of, `${p}[*]`, open)
        : field.keys.flatMap((k) => fieldPaths(field.of, `${p}["${k}"]`, open));
    case 'any':
      return Object.entries(field.types).flatMap(([, spec]) => declaredPaths(spec, p, open));
    default:
      return [];
  }
}
