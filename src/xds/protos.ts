// The Envoy v3 protobuf types Weft speaks, loaded once from @grpc/grpc-js-xds's deps/ folder
// (the repo holds no copies of upstream protos). One protobufjs Root with keepCase, so field
// names match the snake_case plain objects of the xDS contract (types.ts).
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';
import { WeftError } from '../errors.js';
import { XDS_PROTO_FILES } from './proto-files.js';
import type { FieldRow, WireSchema } from './wire.js';

export { XDS_PROTO_FILES } from './proto-files.js';

let cached: protobuf.Root | undefined;

function includeDirs(): string[] {
  const require = createRequire(import.meta.url);
  const xdsDeps = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
  // protobufjs ships google/protobuf/descriptor.proto, which validate.proto imports; the
  // well-known types it bundles (any, struct, duration, …) need no path at all.
  const protobufjsDir = dirname(require.resolve('protobufjs/package.json'));
  return [
    join(xdsDeps, 'envoy-api'),
    join(xdsDeps, 'xds'),
    join(xdsDeps, 'googleapis'),
    join(xdsDeps, 'protoc-gen-validate'),
    protobufjsDir,
  ];
}

/**
 * The descriptor `npm run build` writes next to this module: the same types as JSON, made from
 * the dependency's .proto files at build time (scripts/build-protos.mjs), so that a process
 * never parses .proto text. Parsing leaves every name a slice of its file's text, which keeps
 * ~1 MB of source alive in each process; a JSON descriptor is loaded in a fraction of the time.
 */
const DESCRIPTOR = new URL('./envoy-protos.json', import.meta.url);

/** The types parsed from the .proto files in the dependency (what the build turns into JSON). */
export function parseXdsProtos(): protobuf.Root {
  const dirs = includeDirs();
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const dir of dirs) {
      const candidate = join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return target; // protobufjs resolves its bundled well-known types by this bare name
  };
  root.loadSync([...XDS_PROTO_FILES], { keepCase: true });
  root.resolveAll();
  return root;
}

/**
 * The descriptor's content: the types of XDS_PROTO_FILES and their imports, without the
 * annotations (extensions and the types only they use), which every process would otherwise hold
 * for nothing.
 */
export function xdsDescriptorJson(root: protobuf.Root): string {
  // Kept: every type but the machinery of annotations, which describes .proto files and never
  // travels — validation rules, udpa/xds/envoy annotations, descriptor.proto — unless a kept
  // type refers to it. (Types only an Any names, such as TypedStruct, must stay: no field
  // points at them.)
  const annotation = (t: protobuf.ReflectionObject): boolean =>
    /^\.(validate|udpa\.annotations|xds\.annotations|envoy\.annotations)\./.test(t.fullName) ||
    t.filename?.endsWith('google/protobuf/descriptor.proto') === true;
  const kept = new Set<protobuf.ReflectionObject>();
  const queue: protobuf.ReflectionObject[] = [];
  const keep = (t: protobuf.ReflectionObject | null): void => {
    if (t === null || kept.has(t)) return;
    kept.add(t);
    queue.push(t);
  };
  const all: protobuf.ReflectionObject[] = [];
  // Extensions (`extend google.protobuf.FieldOptions { … }`: validation rules, annotations)
  // describe the .proto files, not messages on the wire.
  const extensions: protobuf.Field[] = [];
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const o of ns.nestedArray) {
      if (o instanceof protobuf.Type || o instanceof protobuf.Enum || o instanceof protobuf.Service)
        all.push(o);
      if (o instanceof protobuf.Field && o.extend !== undefined) extensions.push(o);
      if (o instanceof protobuf.Namespace || o instanceof protobuf.Type) walk(o);
    }
  };
  walk(root);
  for (const t of all) if (!annotation(t)) keep(t);
  while (queue.length > 0) {
    const t = queue.pop()!;
    // A nested type is written inside its parent, so the parent (and what it refers to) stays.
    if (t.parent instanceof protobuf.Type) keep(t.parent);
    if (t instanceof protobuf.Type) for (const f of t.fieldsArray) keep(f.resolvedType);
    if (t instanceof protobuf.Service) {
      for (const m of t.methodsArray) {
        keep(m.resolvedRequestType);
        keep(m.resolvedResponseType);
      }
    }
  }
  for (const e of extensions) e.parent?.remove(e);
  for (const t of all) if (!kept.has(t)) t.parent?.remove(t);
  return JSON.stringify({ files: XDS_PROTO_FILES, root: root.toJSON() });
}

/**
 * The wire codec's table (wire.ts) for every type of `root`: what a sidecar needs to read and
 * write these messages, without protobufjs's reflection objects.
 */
export function xdsWireSchemaJson(root: protobuf.Root): string {
  const schema: WireSchema = { files: XDS_PROTO_FILES, messages: {}, enums: {} };
  const name = (t: protobuf.ReflectionObject): string => t.fullName.slice(1);
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const o of ns.nestedArray) {
      if (o instanceof protobuf.Type) {
        schema.messages[name(o)] = o.fieldsArray.map((f): FieldRow => {
          const type = f.resolvedType === null ? f.type : name(f.resolvedType);
          if (f instanceof protobuf.MapField) return [f.id, f.name, type, 2, f.keyType];
          return [f.id, f.name, type, f.repeated ? 1 : 0];
        });
      } else if (o instanceof protobuf.Enum) {
        const values: Record<string, string> = {};
        // Of aliases, the last name given a number is the one protobufjs's toObject reports.
        for (const [n, id] of Object.entries(o.values)) values[id] = n;
        schema.enums[name(o)] = values;
      }
      if (o instanceof protobuf.Namespace || o instanceof protobuf.Type) walk(o);
    }
  };
  walk(root);
  return JSON.stringify(schema);
}

function loadDescriptor(): protobuf.Root | undefined {
  let text: string;
  try {
    text = readFileSync(DESCRIPTOR, 'utf8');
  } catch {
    return undefined; // not built (a checkout run from source): parse instead
  }
  let json: { files: string[]; root: protobuf.INamespace };
  try {
    json = JSON.parse(text) as typeof json;
  } catch {
    return undefined; // damaged: parse the .proto files instead
  }
  // Built from another file list (sources changed since the build): not to be trusted.
  if (json.files.join('\n') !== XDS_PROTO_FILES.join('\n')) return undefined;
  const root = protobuf.Root.fromJSON(json.root);
  root.resolveAll();
  return root;
}

/** The shared Root, loaded on first use and cached for the process. */
export function xdsRoot(): protobuf.Root {
  cached ??= loadDescriptor() ?? parseXdsProtos();
  return cached;
}

/** The message type for a fully qualified name or a `type.googleapis.com/…` URL. */
export function messageType(nameOrTypeUrl: string): protobuf.Type {
  const name = nameOrTypeUrl.slice(nameOrTypeUrl.lastIndexOf('/') + 1);
  const found = xdsRoot().lookup(name);
  if (!(found instanceof protobuf.Type)) {
    throw new WeftError(
      'WEFT_E_INTERNAL',
      `xDS type ${name} is not loaded: add its proto file to XDS_PROTO_FILES in src/xds/protos.ts`,
    );
  }
  return found;
}
