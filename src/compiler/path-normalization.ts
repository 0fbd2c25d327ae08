// The MeshConfig's path normalization as the HttpConnectionManager fields Envoy (and the Weft
// sidecar) read, as Istio maps its meshConfig.pathNormalization:
//   NONE                      nothing: the path goes as received;
//   BASE                      normalize_path (RFC 3986: dot segments, %2e, unreserved escapes,
//                             backslash as slash);
//   MERGE_SLASHES             BASE + merge_slashes (the default);
//   DECODE_AND_MERGE_SLASHES  MERGE_SLASHES + path_with_escaped_slashes_action
//                             UNESCAPE_AND_FORWARD (%2F and %5C decoded first).
// Only sidecar HCMs get them. Proxyless gRPC clients are left out: grpc-js-xds accepts the
// fields but does nothing with them, and a gRPC method path has nothing to normalize.

import type { PathNormalizationMode } from '../registry/model.js';

/** What the mesh does without a MeshConfig: the MeshConfig schema's default (a test holds them together). */
export const DEFAULT_PATH_NORMALIZATION: PathNormalizationMode = 'MERGE_SLASHES';

export function hcmPathFields(mode: PathNormalizationMode): Record<string, unknown> {
  switch (mode) {
    case 'NONE':
      return {};
    case 'BASE':
      return { normalize_path: { value: true } };
    case 'MERGE_SLASHES':
      return { normalize_path: { value: true }, merge_slashes: true };
    case 'DECODE_AND_MERGE_SLASHES':
      return {
        normalize_path: { value: true },
        merge_slashes: true,
        path_with_escaped_slashes_action: 'UNESCAPE_AND_FORWARD',
      };
  }
}
