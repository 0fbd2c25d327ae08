// The protobuf wire format for the xDS client, without a reflection library. A sidecar decodes a
// handful of resource types and encodes one request type, yet protobufjs's reflection objects,
// their generated codecs and its .proto parser made up over a third of an idle sidecar's heap
// (~5 MB). Here the types are a compact table written at build time (`npm run build`, from the
// same Root the control plane encodes with: scripts/build-protos.mjs), read by one small
// interpreter in each direction.
//
// decodeMessage yields exactly what protobufjs's `toObject(decode(bytes), {enums: String, longs:
// Number, bytes: String, json: true})` does, which the control plane and the compiler's goldens
// speak: fields present on the wire and nothing else, enum names (numbers when unknown), 64-bit
// integers as numbers, bytes as base64, non-finite doubles as strings, and an Any of a known type
// expanded to `{'@type', …fields}`. A differential test holds the two to that.
//
// encodeMessage takes the same plain-object form back (as protobufjs's fromObject does, but an
// unknown field or enum name is an error with its path rather than silently dropped).
import { readFileSync } from 'node:fs';
import { WeftError, type FieldError } from '../errors.js';
import { XDS_PROTO_FILES } from './proto-files.js';

/** `[field number, name, type, rule, map key type]`; rule 0 single, 1 repeated, 2 map. */
export type FieldRow = [number, string, string, 0 | 1 | 2, string?];

/** Every message and enum type of the descriptor, by full name without the leading dot. */
export interface WireSchema {
  /** The proto files it was made from (a stale build is refused). */
  files: readonly string[];
  messages: Record<string, FieldRow[]>;
  /** Enum value names by number. */
  enums: Record<string, Record<string, string>>;
}

const ANY = 'google.protobuf.Any';
const GOOGLE_API = 'type.googleapis.com/';
/** Nesting deeper than this is refused (protobufjs's own limit). */
const MAX_DEPTH = 100;

const SCALAR_WIRE: Record<string, number> = {
  double: 1,
  float: 5,
  int32: 0,
  uint32: 0,
  sint32: 0,
  int64: 0,
  uint64: 0,
  sint64: 0,
  fixed32: 5,
  sfixed32: 5,
  fixed64: 1,
  sfixed64: 1,
  bool: 0,
  string: 2,
  bytes: 2,
};

interface Field {
  id: number;
  name: string;
  /** A scalar name, or the full name of a message or enum. */
  type: string;
  kind: 'scalar' | 'enum' | 'message';
  rule: 0 | 1 | 2;
  keyType: string;
  /** For repeated numeric scalars and enums: may arrive packed, and is sent packed. */
  packable: boolean;
}

interface MessageType {
  name: string;
  byId: Map<number, Field>;
  byName: Map<string, Field>;
  /** Fields in number order, the order protobufjs encodes them in. */
  ordered: Field[];
}

export class WireTypes {
  private readonly compiled = new Map<string, MessageType>();

  constructor(private readonly schema: WireSchema) {}

  has(name: string): boolean {
    return Object.hasOwn(this.schema.messages, name);
  }

  /** The type by full name; compiled on first use, so a sidecar holds only what it meets. */
  message(name: string): MessageType {
    let t = this.compiled.get(name);
    if (t !== undefined) return t;
    const rows = Object.hasOwn(this.schema.messages, name) ? this.schema.messages[name] : undefined;
    if (rows === undefined)
      throw new WeftError('WEFT_E_INTERNAL', `xDS type ${name} is not in the wire schema`);
    const fields = rows.map(([id, fieldName, type, rule, keyType]): Field => {
      const kind = Object.hasOwn(SCALAR_WIRE, type)
        ? 'scalar'
        : Object.hasOwn(this.schema.enums, type)
          ? 'enum'
          : 'message';
      const packable = rule === 1 && (kind === 'enum' || (kind === 'scalar' && SCALAR_WIRE[type] !== 2));
      return { id, name: fieldName, type, kind, rule, keyType: keyType ?? '', packable };
    });
    t = {
      name,
      byId: new Map(fields.map((f) => [f.id, f])),
      byName: new Map(fields.map((f) => [f.name, f])),
      ordered: [...fields].sort((a, b) => a.id - b.id),
    };
    this.compiled.set(name, t);
    return t;
  }

  enumName(type: string, n: number): string | number {
    const values = this.schema.enums[type]!;
    return Object.hasOwn(values, n) ? values[n]! : n;
  }

  enumNumber(type: string, name: string): number | undefined {
    const values = this.schema.enums[type]!;
    for (const k in values) if (values[k] === name) return Number(k);
    return undefined;
  }

  /** What an Any's type URL names, as protobufjs resolves it from google.protobuf. */
  anyTarget(typeUrl: string): string | undefined {
    const name = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
    for (const candidate of [`google.protobuf.${name}`, `google.${name}`, name]) {
      if (this.has(candidate)) return candidate;
    }
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** A cursor over protobuf bytes, for envelopes read by hand (client-codec.ts). */
export class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    pos: number,
    public end: number,
  ) {
    this.pos = pos;
  }

  static of(bytes: Uint8Array): Reader {
    const buf = Buffer.isBuffer(bytes)
      ? bytes
      : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return new Reader(buf, 0, buf.length);
  }

  /** The bytes of a length-delimited field, as a view (no copy). */
  delimited(): Buffer {
    const n = this.length();
    this.pos += n;
    return this.buf.subarray(this.pos - n, this.pos);
  }

  string(): string {
    return this.delimited().toString('utf8');
  }

  /**
   * Narrows the reader to the next length-delimited field; returns the end to give back to
   * leave() once the field is read. (No reader object per nested message: config decoding of a
   * large ClusterLoadAssignment was ~20 % slower with one.)
   */
  enter(): number {
    const n = this.length();
    const outer = this.end;
    this.end = this.pos + n;
    return outer;
  }

  leave(outer: number): void {
    this.end = outer;
  }

  /** A reader over the next length-delimited field (positions stay those of the whole buffer). */
  sub(): Reader {
    const n = this.length();
    this.pos += n;
    return new Reader(this.buf, this.pos - n, this.pos);
  }

  fail(what: string): never {
    throw new WeftError('WEFT_E_PARSE', `malformed protobuf at byte ${this.pos}: ${what}`);
  }

  byte(): number {
    if (this.pos >= this.end) this.fail('truncated');
    return this.buf[this.pos++]!;
  }

  /** A varint's low and high 32 bits. */
  varint64(): [number, number] {
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      if (i < 4) lo |= (b & 0x7f) << (7 * i);
      else if (i === 4) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >> 4;
      } else hi |= (b & 0x7f) << (7 * i - 32);
      if (b < 0x80) return [lo >>> 0, hi >>> 0];
    }
    return this.fail('varint longer than 10 bytes');
  }

  /** A varint's low 32 bits, unsigned. */
  uint32(): number {
    return this.varint64()[0];
  }

  length(): number {
    const n = this.uint32();
    if (n > this.end - this.pos) this.fail(`length ${n} runs past the end`);
    return n;
  }

  fixed32(): number {
    if (this.end - this.pos < 4) this.fail('truncated');
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  skip(wireType: number, depth: number): void {
    switch (wireType) {
      case 0:
        this.varint64();
        return;
      case 1:
        this.advance(8);
        return;
      case 2:
        this.advance(this.length());
        return;
      case 3:
        if (depth > MAX_DEPTH) this.fail('groups nested too deeply');
        for (;;) {
          const tag = this.uint32();
          if ((tag & 7) === 4) return;
          this.skip(tag & 7, depth + 1);
        }
      case 5:
        this.advance(4);
        return;
      default:
        this.fail(`wire type ${wireType}`);
    }
  }

  advance(n: number): void {
    if (this.end - this.pos < n) this.fail('truncated');
    this.pos += n;
  }
}

function longToNumber(lo: number, hi: number, unsigned: boolean): number {
  if (!unsigned && hi >>> 31) {
    const l = (~lo + 1) >>> 0;
    let h = ~hi >>> 0;
    if (l === 0) h = (h + 1) >>> 0;
    return -(l + h * 4294967296);
  }
  return lo + hi * 4294967296;
}

function readScalar(r: Reader, type: string): unknown {
  switch (type) {
    case 'string':
      return r.string();
    case 'bytes':
      return r.delimited().toString('base64');
    case 'bool':
      return r.varint64().some((half) => half !== 0);
    case 'int32':
      return r.varint64()[0] | 0;
    case 'uint32':
      return r.varint64()[0];
    case 'sint32': {
      const n = r.varint64()[0];
      return (n >>> 1) ^ -(n & 1);
    }
    case 'int64':
    case 'uint64': {
      const [lo, hi] = r.varint64();
      return longToNumber(lo, hi, type === 'uint64');
    }
    case 'sint64': {
      const [lo, hi] = r.varint64();
      const mask = -(lo & 1);
      return longToNumber((((lo >>> 1) | (hi << 31)) ^ mask) >>> 0, ((hi >>> 1) ^ mask) >>> 0, false);
    }
    case 'fixed32':
      return r.fixed32();
    case 'sfixed32':
      return r.fixed32() | 0;
    case 'fixed64':
    case 'sfixed64': {
      const lo = r.fixed32();
      return longToNumber(lo, r.fixed32(), type === 'fixed64');
    }
    case 'float': {
      r.advance(4);
      return nonFinite(r.buf.readFloatLE(r.pos - 4));
    }
    case 'double': {
      r.advance(8);
      return nonFinite(r.buf.readDoubleLE(r.pos - 8));
    }
    default:
      return r.fail(`unknown scalar type ${type}`);
  }
}

/** JSON has no NaN or Infinity: protobufjs's json option writes them as strings. */
function nonFinite(v: number): number | string {
  return Number.isFinite(v) ? v : String(v);
}

function readValue(types: WireTypes, r: Reader, f: Field, type: string, depth: number): unknown {
  if (f.kind === 'message' && type === f.type) {
    const outer = r.enter();
    const v = readMessage(types, r, type, depth + 1);
    r.leave(outer);
    return v;
  }
  if (f.kind === 'enum' && type === f.type) return types.enumName(type, r.varint64()[0] | 0);
  return readScalar(r, type);
}

/** Own property even for `__proto__`, as protobufjs's makeProp does. */
function setKey(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__')
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

function readMapEntry(types: WireTypes, r: Reader, f: Field, depth: number): [string, unknown] {
  const outer = r.enter();
  let key: unknown = f.keyType === 'string' ? '' : f.keyType === 'bool' ? false : 0;
  let value: unknown;
  while (r.pos < r.end) {
    const tag = r.uint32();
    if (tag >>> 3 === 1) key = readScalar(r, f.keyType);
    else if (tag >>> 3 === 2) value = readValue(types, r, f, f.type, depth);
    else r.skip(tag & 7, depth);
  }
  r.leave(outer);
  if (value === undefined) {
    value = f.kind === 'message' ? {} : f.kind === 'enum' ? types.enumName(f.type, 0) : defaultScalar(f.type);
  }
  return [String(key), value];
}

function defaultScalar(type: string): unknown {
  if (type === 'string' || type === 'bytes') return '';
  return type === 'bool' ? false : 0;
}

function readMessage(types: WireTypes, r: Reader, typeName: string, depth: number): Record<string, unknown> {
  if (depth > MAX_DEPTH) r.fail('messages nested too deeply');
  if (typeName === ANY) return readAny(types, r, depth);
  const t = types.message(typeName);
  const out: Record<string, unknown> = {};
  while (r.pos < r.end) {
    const tag = r.uint32();
    const wireType = tag & 7;
    const f = t.byId.get(tag >>> 3);
    if (f === undefined) {
      r.skip(wireType, depth);
      continue;
    }
    if (f.rule === 2) {
      if (wireType !== 2) r.fail(`${t.name}.${f.name}: map entry with wire type ${wireType}`);
      const [k, v] = readMapEntry(types, r, f, depth);
      const map = (out[f.name] ??= {}) as Record<string, unknown>;
      setKey(map, k, v);
    } else if (f.rule === 1) {
      const list = (out[f.name] ??= []) as unknown[];
      if (f.packable && wireType === 2) {
        const n = r.length();
        const end = r.pos + n;
        while (r.pos < end) list.push(readValue(types, r, f, f.type, depth));
        if (r.pos !== end) r.fail(`${t.name}.${f.name}: packed field overruns its length`);
        // protobufjs leaves an empty repeated field (a zero-length packed run) out of toObject.
        if (list.length === 0) delete out[f.name];
      } else {
        checkWireType(r, t, f, wireType);
        list.push(readValue(types, r, f, f.type, depth));
      }
    } else {
      checkWireType(r, t, f, wireType);
      out[f.name] = readValue(types, r, f, f.type, depth);
    }
  }
  return out;
}

function checkWireType(r: Reader, t: MessageType, f: Field, wireType: number): void {
  const expected = f.kind === 'scalar' ? SCALAR_WIRE[f.type]! : f.kind === 'enum' ? 0 : 2;
  if (wireType !== expected) r.fail(`${t.name}.${f.name}: wire type ${wireType}, expected ${expected}`);
}

/**
 * An Any whose type is known becomes `{…fields, '@type'}`, as protobufjs's json option does; any
 * other stays `{type_url, value}` (value in base64). Its value is read in place, once.
 */
function readAny(types: WireTypes, r: Reader, depth: number): Record<string, unknown> {
  const any: Record<string, unknown> = {};
  let value: Reader | undefined;
  while (r.pos < r.end) {
    const tag = r.uint32();
    const id = tag >>> 3;
    if (id !== 1 && id !== 2) {
      r.skip(tag & 7, depth);
      continue;
    }
    const name = id === 1 ? 'type_url' : 'value';
    if ((tag & 7) !== 2) r.fail(`${ANY}.${name}: wire type ${tag & 7}, expected 2`);
    if (id === 1) any.type_url = r.string();
    else value = r.sub();
  }
  const url = any.type_url;
  const target = typeof url === 'string' && url !== '' ? types.anyTarget(url) : undefined;
  if (target === undefined) {
    if (value !== undefined) any.value = value.buf.toString('base64', value.pos, value.end);
    return any;
  }
  const inner = readMessage(types, value ?? Reader.of(Buffer.alloc(0)), target, depth + 1);
  const prefix = (url as string).slice(0, (url as string).lastIndexOf('/') + 1);
  inner['@type'] = (prefix === '' ? GOOGLE_API : prefix) + target;
  return inner;
}

/** The plain-object form of `bytes` as the message type `typeName` (full name, no dot). */
export function decodeMessage(
  types: WireTypes,
  typeName: string,
  bytes: Uint8Array,
): Record<string, unknown> {
  return readMessage(types, Reader.of(bytes), typeName, 0);
}

// ---------------------------------------------------------------------------------------------
// Encoding

class Writer {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private scratch = Buffer.allocUnsafe(10);

  bytes(b: Uint8Array): void {
    this.chunks.push(Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    this.size += b.length;
  }

  /** A varint of the 64-bit value lo + hi·2³². */
  varint64(lo: number, hi: number): void {
    const out = this.scratch;
    let n = 0;
    while (hi !== 0 || lo > 0x7f) {
      out[n++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    out[n++] = lo;
    this.bytes(Buffer.from(out.subarray(0, n)));
  }

  uint32(n: number): void {
    this.varint64(n >>> 0, 0);
  }

  tag(id: number, wireType: number): void {
    this.uint32(id * 8 + wireType);
  }

  delimited(b: Uint8Array): void {
    this.uint32(b.length);
    this.bytes(b);
  }

  finish(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/**
 * The lo and hi 32-bit halves of a 64-bit integer given as a number or a decimal string, as
 * protobufjs (through long.js) takes them: a number saturates at the type's range, a string wraps.
 */
function longBits(v: number | string, unsigned: boolean): [number, number] {
  let big = BigInt(v);
  if (typeof v === 'number') {
    const [min, max] = unsigned ? [0n, UINT64_MAX] : [INT64_MIN, INT64_MAX];
    big = big < min ? min : big > max ? max : big;
  }
  big = BigInt.asUintN(64, big);
  return [Number(big & 0xffffffffn), Number(big >> 32n)];
}

class Encoder {
  readonly errors: FieldError[] = [];

  constructor(private readonly types: WireTypes) {}

  message(typeName: string, obj: unknown, path: string): Buffer {
    const w = new Writer();
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj) || obj instanceof Uint8Array) {
      this.errors.push({ path, message: `expected a ${typeName} object` });
      return w.finish();
    }
    const o = obj as Record<string, unknown>;
    if (typeName === ANY && '@type' in o) return this.any(o, path);
    const t = this.types.message(typeName);
    for (const key of Object.keys(o)) {
      if (!t.byName.has(key))
        this.errors.push({ path: join(path, key), message: `unknown field of ${typeName}` });
    }
    for (const f of t.ordered) {
      const v = o[f.name];
      if (v === undefined || v === null) continue;
      const at = join(path, f.name);
      if (f.rule === 2) this.map(w, f, v, at);
      else if (f.rule === 1) this.repeated(w, f, v, at);
      else this.field(w, f, f.type, f.id, v, at);
    }
    return w.finish();
  }

  private any(o: Record<string, unknown>, path: string): Buffer {
    const url = o['@type'];
    const target = typeof url === 'string' ? this.types.anyTarget(url) : undefined;
    if (typeof url !== 'string' || target === undefined) {
      this.errors.push({ path: join(path, '@type'), message: `unknown message type ${String(url)}` });
      return Buffer.alloc(0);
    }
    const { '@type': _drop, ...rest } = o;
    const value = this.message(target, rest, path);
    let typeUrl = url.startsWith('.') ? url.slice(1) : url;
    if (!typeUrl.includes('/')) typeUrl = '/' + typeUrl;
    const w = new Writer();
    w.tag(1, 2);
    w.delimited(Buffer.from(typeUrl, 'utf8'));
    w.tag(2, 2);
    w.delimited(value);
    return w.finish();
  }

  private repeated(w: Writer, f: Field, v: unknown, at: string): void {
    if (!Array.isArray(v)) {
      this.errors.push({ path: at, message: 'expected an array' });
      return;
    }
    if (v.length === 0) return;
    if (f.packable) {
      const inner = new Writer();
      v.forEach((item, i) => this.value(inner, f, f.type, item, `${at}[${i}]`));
      w.tag(f.id, 2);
      w.delimited(inner.finish());
      return;
    }
    v.forEach((item, i) => this.field(w, f, f.type, f.id, item, `${at}[${i}]`));
  }

  private map(w: Writer, f: Field, v: unknown, at: string): void {
    if (typeof v !== 'object' || Array.isArray(v)) {
      this.errors.push({ path: at, message: 'expected a map (plain object)' });
      return;
    }
    for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
      const entry = new Writer();
      const key: unknown = f.keyType === 'string' ? k : f.keyType === 'bool' ? k === 'true' : Number(k);
      this.field(entry, { ...f, kind: 'scalar', rule: 0 }, f.keyType, 1, key, `${at}[${JSON.stringify(k)}]`);
      this.field(entry, f, f.type, 2, item, `${at}[${JSON.stringify(k)}]`);
      w.tag(f.id, 2);
      w.delimited(entry.finish());
    }
  }

  private field(w: Writer, f: Field, type: string, id: number, v: unknown, at: string): void {
    const wireType = f.kind === 'scalar' || type !== f.type ? SCALAR_WIRE[type]! : f.kind === 'enum' ? 0 : 2;
    w.tag(id, wireType);
    this.value(w, f, type, v, at);
  }

  private value(w: Writer, f: Field, type: string, v: unknown, at: string): void {
    if (type === f.type && f.kind === 'message') {
      w.delimited(this.message(type, v, at));
      return;
    }
    if (type === f.type && f.kind === 'enum') {
      const n =
        typeof v === 'number' ? v : typeof v === 'string' ? this.types.enumNumber(type, v) : undefined;
      if (n === undefined || !Number.isInteger(n)) {
        this.errors.push({ path: at, message: `expected a ${type} name, got ${JSON.stringify(v)}` });
        return;
      }
      w.varint64(n >>> 0, n < 0 ? 0xffffffff : 0);
      return;
    }
    const problem = this.scalar(w, type, v);
    if (problem !== undefined) this.errors.push({ path: at, message: problem });
  }

  private scalar(w: Writer, type: string, v: unknown): string | undefined {
    switch (type) {
      case 'string':
        if (typeof v !== 'string') return 'expected a string';
        w.delimited(Buffer.from(v, 'utf8'));
        return undefined;
      case 'bytes':
        if (v instanceof Uint8Array) w.delimited(v);
        else if (typeof v === 'string') w.delimited(Buffer.from(v, 'base64'));
        else return 'expected bytes (Uint8Array or base64)';
        return undefined;
      case 'bool':
        if (typeof v !== 'boolean') return 'expected a boolean';
        w.uint32(v ? 1 : 0);
        return undefined;
      case 'double':
      case 'float': {
        // NaN and the infinities come back from decodeMessage as strings (JSON has no such numbers).
        if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') v = Number(v);
        if (typeof v !== 'number') return 'expected a number';
        const b = Buffer.allocUnsafe(type === 'double' ? 8 : 4);
        if (type === 'double') b.writeDoubleLE(v);
        else b.writeFloatLE(v);
        w.bytes(b);
        return undefined;
      }
      default:
        return this.integer(w, type, v);
    }
  }

  private integer(w: Writer, type: string, given: unknown): string | undefined {
    // Any integral number: a 64-bit value decoded as a number may be past 2^53 (and is then sent
    // as the number it became, as protobufjs does).
    if (
      !(typeof given === 'number' && Number.isInteger(given)) &&
      !(typeof given === 'string' && /^-?\d+$/.test(given))
    )
      return 'expected an integer';
    let v: number | string = given;
    // 32-bit types keep the low 32 bits (int32 sign-extended on the wire), as protobufjs does.
    if (type === 'int32' || type === 'sint32' || type === 'sfixed32') v = Number(v) | 0;
    else if (type === 'uint32' || type === 'fixed32') v = Number(v) >>> 0;
    const [lo, hi] = longBits(v, type === 'uint64' || type === 'fixed64');
    switch (type) {
      case 'int32':
      case 'int64':
      case 'uint32':
      case 'uint64':
        w.varint64(lo, hi);
        return undefined;
      case 'sint32':
      case 'sint64': {
        const mask = hi >> 31;
        w.varint64(((lo << 1) ^ mask) >>> 0, (((hi << 1) | (lo >>> 31)) ^ mask) >>> 0);
        return undefined;
      }
      case 'fixed32':
      case 'sfixed32': {
        const b = Buffer.allocUnsafe(4);
        b.writeUInt32LE(lo);
        w.bytes(b);
        return undefined;
      }
      case 'fixed64':
      case 'sfixed64': {
        const b = Buffer.allocUnsafe(8);
        b.writeUInt32LE(lo);
        b.writeUInt32LE(hi, 4);
        w.bytes(b);
        return undefined;
      }
      default:
        return `unsupported scalar type ${type}`;
    }
  }
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/**
 * The bytes of `obj` as the message type `typeName`. An unknown field, an unknown enum name or a
 * value of the wrong shape is an error naming its path, and nothing is encoded.
 */
export function encodeMessage(types: WireTypes, typeName: string, obj: object): Buffer {
  const enc = new Encoder(types);
  const bytes = enc.message(typeName, obj, '');
  if (enc.errors.length > 0) {
    const list = enc.errors.map((e) => `${e.path}: ${e.message}`).join('; ');
    throw new WeftError('WEFT_E_INTERNAL', `invalid ${typeName} (a bug in Weft): ${list}`, enc.errors);
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// The schema written by the build

const SCHEMA = new URL('./envoy-wire.json', import.meta.url);
let loaded: WireTypes | undefined;

/** The xDS types, from the table `npm run build` writes next to this module. */
export function xdsWireTypes(): WireTypes {
  if (loaded !== undefined) return loaded;
  let schema: WireSchema;
  try {
    schema = JSON.parse(readFileSync(SCHEMA, 'utf8')) as WireSchema;
  } catch (err) {
    throw new WeftError(
      'WEFT_E_INTERNAL',
      `the xDS wire schema ${SCHEMA.pathname} cannot be read (${(err as Error).message}): run \`npm run build\``,
    );
  }
  if (schema.files.join('\n') !== XDS_PROTO_FILES.join('\n')) {
    throw new WeftError('WEFT_E_INTERNAL', `the xDS wire schema is stale: run \`npm run build\``);
  }
  loaded = new WireTypes(schema);
  return loaded;
}
