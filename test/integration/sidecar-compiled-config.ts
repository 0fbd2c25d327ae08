// A sidecar's RuntimeConfig made the way a real sidecar gets it: a mesh model compiled for the
// sidecar's node, sent through the Envoy codec and translated, as over xDS. Kept apart from
// sidecar-proxy-helpers.ts so that the proxy child process, whose memory a test watches, does not
// load the compiler and the Envoy protobuf types.

import { compile, type NodeView } from '../../src/compiler/compile.js';
import type {
  AuthorizationBinding,
  MeshModel,
  PathNormalizationMode,
  PortProtocol,
} from '../../src/registry/model.js';
import { formatProblem } from '../../src/sidecar/config/problems.js';
import { translate } from '../../src/sidecar/config/translate.js';
import type { RuntimeConfig } from '../../src/sidecar/runtime-config.js';
import { decodeResource, encodeResource } from '../../src/xds/codec.js';
import { TypeUrl, type ResourceSet } from '../../src/xds/types.js';

/**
 * What the sidecar of workload default/be-0 (Service `be` port 80, app on `appPort`) applies,
 * given these policies: compiled, sent through the Envoy codec and translated, as over xDS. Its
 * `outbound` listener routes Host `be` straight to the app; `inbound|0` fronts the app.
 */
export function compiledSidecarConfig(
  appPort: number,
  protocol: PortProtocol,
  authorization: AuthorizationBinding[],
  pathNormalization?: PathNormalizationMode,
): RuntimeConfig {
  const model: MeshModel = {
    services: [
      {
        namespace: 'default',
        name: 'be',
        implicit: false,
        ports: [
          {
            port: 80,
            protocol,
            endpoints: [
              {
                address: '127.0.0.1',
                port: appPort,
                workload: 'default/be-0',
                serviceAccount: 'be',
                labels: {},
              },
            ],
          },
        ],
      },
    ],
    routes: [],
    authorization,
    ...(pathNormalization ? { pathNormalization } : {}),
  };
  const node: NodeView = {
    namespace: 'default',
    sidecar: {
      outbound: { host: '127.0.0.1', port: 0 },
      inbound: { host: '127.0.0.1', port: 0, appPort, protocol },
      tcpUpstreams: [],
      workload: 'default/be-0',
    },
  };
  const set: ResourceSet = compile(model, node);
  const wire = (t: TypeUrl) =>
    new Map(
      [...(set.get(t) ?? new Map<string, object>())].map(([n, o]) => [
        n,
        decodeResource(t, encodeResource(t, o)),
      ]),
    );
  const r = translate({
    listeners: wire(TypeUrl.Listener),
    routes: wire(TypeUrl.RouteConfiguration),
    clusters: wire(TypeUrl.Cluster),
    endpoints: wire(TypeUrl.ClusterLoadAssignment),
    versions: { listeners: '1', routes: '1', clusters: '1', endpoints: '1' },
  });
  if (!r.ok) throw new Error(r.problems.map(formatProblem).join('\n'));
  return r.config;
}
