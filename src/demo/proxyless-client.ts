// A proxyless gRPC client: @grpc/grpc-js-xds resolves `xds:///<service>` by asking Weft's xDS
// server, with a per-channel bootstrap so one process can hold clients of several meshes.

import * as grpc from '@grpc/grpc-js';
import { register } from '@grpc/grpc-js-xds';
import { echoService, type EchoRequest, type EchoResponse } from './echo-server.js';

let registered = false;

export interface BootstrapOptions {
  xdsAddress: string;
  nodeId: string;
  namespace?: string;
}

/** The bootstrap document gRPC's xDS support reads (the GRPC_XDS_BOOTSTRAP file's content). */
export function bootstrapConfig(opts: BootstrapOptions): object {
  return {
    xds_servers: [
      { server_uri: opts.xdsAddress, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] },
    ],
    node: {
      id: opts.nodeId,
      cluster: 'proxyless',
      metadata: { NAMESPACE: opts.namespace ?? 'default', WEFT_PROXY_TYPE: 'proxyless-grpc' },
      locality: {},
    },
  };
}

export interface EchoClient {
  echo(message: string, metadata?: Record<string, string>, deadlineMs?: number): Promise<EchoResponse>;
  close(): void;
}

export function createEchoClient(target: string, opts: BootstrapOptions): EchoClient {
  if (!registered) {
    register();
    registered = true;
  }
  const Echo = echoService();
  const client = new Echo(target, grpc.credentials.createInsecure(), {
    'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(bootstrapConfig(opts)),
  });
  return {
    echo(message, metadata = {}, deadlineMs = 5000) {
      const md = new grpc.Metadata();
      for (const [k, v] of Object.entries(metadata)) md.set(k, v);
      return new Promise((resolve, reject) => {
        const req: EchoRequest = { message };
        (
          client as unknown as {
            Echo(
              r: EchoRequest,
              m: grpc.Metadata,
              o: grpc.CallOptions,
              cb: (e: grpc.ServiceError | null, r: EchoResponse) => void,
            ): void;
          }
        ).Echo(req, md, { deadline: Date.now() + deadlineMs }, (err, res) =>
          err ? reject(err) : resolve(res),
        );
      });
    },
    close: () => client.close(),
  };
}
