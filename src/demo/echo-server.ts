// A tiny gRPC echo service (weft.demo.v1.Echo) for the demo and for tests: each server answers
// with its own name and the request metadata it received, so a caller can see which backend
// load balancing picked and which headers the mesh added.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export interface EchoRequest {
  message: string;
}

export interface EchoResponse {
  message: string;
  server: string;
  metadata: Record<string, string>;
}

export const ECHO_SERVICE = 'weft.demo.v1.Echo';
const PROTO_PATH = join('proto', 'weft', 'demo', 'v1', 'echo.proto');

let cachedService: grpc.ServiceClientConstructor | undefined;

/** The repository's proto folder, found by walking up from this file (src/ or dist/src/). */
function protoFile(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, PROTO_PATH);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find ${PROTO_PATH} above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** The generated client constructor (its `.service` is the server-side definition). */
export function echoService(): grpc.ServiceClientConstructor {
  if (cachedService) return cachedService;
  const def = protoLoader.loadSync(protoFile(), { keepCase: true, defaults: true, longs: String });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    weft: { demo: { v1: { Echo: grpc.ServiceClientConstructor } } };
  };
  cachedService = pkg.weft.demo.v1.Echo;
  return cachedService;
}

export interface EchoServer {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** `host:port`. */
  readonly address: string;
  /** Calls answered so far. */
  readonly calls: number;
  close(): Promise<void>;
}

/** Starts an echo server on host:port (port 0 picks a free one). */
export async function startEchoServer(opts: {
  name: string;
  host?: string;
  port?: number;
}): Promise<EchoServer> {
  const host = opts.host ?? '127.0.0.1';
  const server = new grpc.Server();
  let calls = 0;
  server.addService(echoService().service, {
    Echo: (
      call: grpc.ServerUnaryCall<EchoRequest, EchoResponse>,
      callback: grpc.sendUnaryData<EchoResponse>,
    ) => {
      calls++;
      const metadata: Record<string, string> = {};
      for (const [key, values] of Object.entries(call.metadata.getMap())) {
        metadata[key] = Buffer.isBuffer(values) ? values.toString('base64') : String(values);
      }
      callback(null, { message: call.request.message, server: opts.name, metadata });
    },
  });
  const hostForBind = host.includes(':') ? `[${host}]` : host;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${hostForBind}:${opts.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    name: opts.name,
    host,
    port,
    address: `${hostForBind}:${port}`,
    get calls() {
      return calls;
    },
    close: () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
