// Part of `npm run build`: writes the Envoy types Weft loads (src/xds/protos.ts) as a protobufjs
// JSON descriptor next to the compiled module, parsed from @grpc/grpc-js-xds's .proto files.
// The repository holds no proto, and processes load the JSON instead of parsing .proto text.
import { writeFileSync } from 'node:fs';

const { parseXdsProtos, xdsDescriptorJson } = await import('../dist/src/xds/protos.js');
const out = new URL('../dist/src/xds/envoy-protos.json', import.meta.url);
writeFileSync(out, xdsDescriptorJson(parseXdsProtos()));
