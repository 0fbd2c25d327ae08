// The xDS client's side of the codec, free of protobufjs (the control plane's strict encoder
// lives in codec.ts): a resource's plain-object form from its bytes, the DiscoveryRequests a
// client sends and the DiscoveryResponses it reads, and the Struct and field helpers both sides
// share. A sidecar loads this module and wire.ts, not the reflection library.
import { decodeMessage, encodeMessage, Reader, xdsWireTypes } from './wire.js';

const DISCOVERY_REQUEST = 'envoy.service.discovery.v3.DiscoveryRequest';

/** The plain-object form of a resource: enums as names, 64-bit integers as numbers, bytes as
 * base64, Any expanded with '@type', unset fields absent. */
export function decodeResource(typeUrl: string, bytes: Uint8Array): Record<string, unknown> {
  return decodeMessage(xdsWireTypes(), typeUrl.slice(typeUrl.lastIndexOf('/') + 1), bytes);
}

/** A resource's name as the xDS protocol keys it (ClusterLoadAssignment uses cluster_name). */
export function resourceName(obj: object): string {
  const o = obj as { name?: unknown; cluster_name?: unknown };
  return typeof o.name === 'string' && o.name !== ''
    ? o.name
    : typeof o.cluster_name === 'string'
      ? o.cluster_name
      : '';
}

/**
 * google.protobuf.Struct in proto form from plain JSON. Value's fields are camelCase
 * (`stringValue`, …) even with keepCase: protobufjs bundles struct.proto that way, and
 * grpc-js-xds reads it the same way, so Weft follows rather than fork the type.
 */
export function structFromJson(json: Record<string, unknown>): { fields: Record<string, object> } {
  const fields: Record<string, object> = {};
  for (const [k, v] of Object.entries(json)) if (v !== undefined) fields[k] = valueFromJson(v);
  return { fields };
}

function valueFromJson(v: unknown): object {
  if (v === null) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(valueFromJson) } };
  if (typeof v === 'object') return { structValue: structFromJson(v as Record<string, unknown>) };
  return { stringValue: String(v) };
}

/** Plain JSON from a google.protobuf.Struct in proto form (as decodeResource yields it). */
export function structToJson(struct: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const fields = (struct as { fields?: Record<string, unknown> } | null | undefined)?.fields ?? {};
  for (const [k, v] of Object.entries(fields)) out[k] = valueToJson(v);
  return out;
}

function valueToJson(v: unknown): unknown {
  const o = (v ?? {}) as Record<string, unknown>;
  if ('stringValue' in o) return o.stringValue;
  if ('numberValue' in o) return o.numberValue;
  if ('boolValue' in o) return o.boolValue;
  if ('structValue' in o) return structToJson(o.structValue);
  if ('listValue' in o) {
    const values = (o.listValue as { values?: unknown[] } | undefined)?.values ?? [];
    return values.map(valueToJson);
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Fields written by hand

function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

function writeVarint(buf: Buffer, offset: number, n: number): number {
  while (n >= 0x80) {
    buf[offset++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[offset++] = n;
  return offset;
}

/** A length-delimited field (wire type 2): tag, length, payload. */
export function lengthDelimited(fieldNumber: number, payload: Uint8Array): Buffer {
  const tag = (fieldNumber << 3) | 2;
  const out = Buffer.allocUnsafe(varintLength(tag) + varintLength(payload.length) + payload.length);
  let o = writeVarint(out, 0, tag);
  o = writeVarint(out, o, payload.length);
  out.set(payload, o);
  return out;
}

/** A string field; empty strings are left out, as proto3 does. */
export function stringField(fieldNumber: number, s: string): Buffer {
  return s === '' ? Buffer.alloc(0) : lengthDelimited(fieldNumber, Buffer.from(s, 'utf8'));
}

// ---------------------------------------------------------------------------------------------
// Discovery messages

/** For clients: a DiscoveryRequest from a plain object (checked strictly, like resources). */
export function encodeDiscoveryRequest(req: object): Uint8Array {
  return encodeMessage(xdsWireTypes(), DISCOVERY_REQUEST, req);
}

/**
 * An ACK (or re-request) as bytes: `fixed` is the encoding of the fields that stay the same
 * between requests (type_url, resource_names; from encodeDiscoveryRequest), and version_info
 * and response_nonce are appended. Field order does not matter in protobuf, and this saves a
 * strict walk and an encode per response on a client that ACKs thousands of them.
 */
export function discoveryRequestBytes(fixed: Uint8Array, version: string, nonce: string): Buffer {
  const v = stringField(1, version);
  const n = stringField(5, nonce);
  const out = Buffer.allocUnsafe(fixed.length + v.length + n.length);
  out.set(fixed, 0);
  out.set(v, fixed.length);
  out.set(n, fixed.length + v.length);
  return out;
}

export interface DiscoveryResponseMessage {
  version_info: string;
  resources: { type_url: string; value: Uint8Array }[];
  type_url: string;
  nonce: string;
}

/** What a client that does not decode resources needs of a response (benchmarks). */
export interface DiscoveryResponseHeader {
  version_info: string;
  type_url: string;
  nonce: string;
  resourceCount: number;
}

/** Reads the top-level fields of a DiscoveryResponse, skipping the resources' bytes. */
export function readDiscoveryResponseHeader(bytes: Uint8Array): DiscoveryResponseHeader {
  const out: DiscoveryResponseHeader = { version_info: '', type_url: '', nonce: '', resourceCount: 0 };
  readDiscoveryResponse(bytes, out, () => out.resourceCount++);
  return out;
}

/** For clients: a DiscoveryResponse with its resources still as raw Any. */
export function decodeDiscoveryResponse(bytes: Uint8Array): DiscoveryResponseMessage {
  const out: DiscoveryResponseMessage = { version_info: '', resources: [], type_url: '', nonce: '' };
  readDiscoveryResponse(bytes, out, (any) => {
    const r = Reader.of(any);
    const resource = { type_url: '', value: new Uint8Array(0) as Uint8Array };
    while (r.pos < r.end) {
      const tag = r.uint32();
      if (tag === ANY_TYPE_URL) resource.type_url = r.string();
      else if (tag === ANY_VALUE) resource.value = r.delimited();
      else r.skip(tag & 7, 0);
    }
    out.resources.push(resource);
  });
  return out;
}

// Tags (field number << 3 | wire type 2) of the fields read by hand.
const VERSION_INFO = (1 << 3) | 2;
const RESOURCES = (2 << 3) | 2;
const TYPE_URL = (4 << 3) | 2;
const NONCE = (5 << 3) | 2;
const ANY_TYPE_URL = (1 << 3) | 2;
const ANY_VALUE = (2 << 3) | 2;

/** DiscoveryResponse's version_info (1), type_url (4) and nonce (5), and each resource (2). */
function readDiscoveryResponse(
  bytes: Uint8Array,
  out: { version_info: string; type_url: string; nonce: string },
  onResource: (any: Buffer) => void,
): void {
  const r = Reader.of(bytes);
  while (r.pos < r.end) {
    const tag = r.uint32();
    if (tag === VERSION_INFO) out.version_info = r.string();
    else if (tag === RESOURCES) onResource(r.delimited());
    else if (tag === TYPE_URL) out.type_url = r.string();
    else if (tag === NONCE) out.nonce = r.string();
    else r.skip(tag & 7, 0);
  }
}
