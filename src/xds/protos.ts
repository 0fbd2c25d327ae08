// The Envoy v3 protobuf types Weft speaks, loaded once from @grpc/grpc-js-xds's deps/ folder
// (the repo holds no copies of upstream protos). One protobufjs Root with keepCase, so field
// names match the snake_case plain objects of the xDS contract (types.ts).
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';
import { WeftError } from '../errors.js';

/**
 * Every proto file whose messages may appear in a resource Weft ships, directly or inside an
 * Any. A type missing here cannot be encoded: the strict codec reports an unknown `@type`.
 */
export const XDS_PROTO_FILES: readonly string[] = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto',
  'envoy/extensions/load_balancing_policies/wrr_locality/v3/wrr_locality.proto',
  'envoy/extensions/load_balancing_policies/ring_hash/v3/ring_hash.proto',
  'envoy/extensions/clusters/aggregate/v3/cluster.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'google/rpc/status.proto',
  'google/protobuf/struct.proto',
  'google/protobuf/wrappers.proto',
];

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

/** The shared Root, loaded on first use (a few hundred ms) and cached for the process. */
export function xdsRoot(): protobuf.Root {
  if (cached) return cached;
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
  cached = root;
  return root;
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
