// Part of `npm run build`: writes the Envoy types Weft loads (src/xds/protos.ts) next to the
// compiled modules, parsed from @grpc/grpc-js-xds's .proto files: a protobufjs JSON descriptor
// (the control plane's strict encoder) and the compact table of the sidecar's wire codec
// (src/xds/wire.ts). The repository holds no proto, and processes parse no .proto text.
import { writeFileSync } from 'node:fs';

const { parseXdsProtos, xdsDescriptorJson, xdsWireSchemaJson } = await import('../dist/src/xds/protos.js');
const root = parseXdsProtos();
// The descriptor prunes the annotation types from the root; the wire table follows the same set.
writeFileSync(new URL('../dist/src/xds/envoy-protos.json', import.meta.url), xdsDescriptorJson(root));
writeFileSync(new URL('../dist/src/xds/envoy-wire.json', import.meta.url), xdsWireSchemaJson(root));
