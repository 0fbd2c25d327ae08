// `npm start` / `weft demo`: a control plane on the embedded store, two versions of a gRPC echo
// service, Gateway API routes that split traffic between them, and a proxyless gRPC client that
// keeps calling `xds:///echo` and prints where its calls land. Half-way it shifts the weights to
// show a route change reaching the client without a restart. Ctrl-C stops everything cleanly.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, levelOf } from '../log.js';
import { startControlPlane, type RunningControlPlane } from '../control-plane/control-plane.js';
import { startEchoServer, type EchoServer } from './echo-server.js';
import { createEchoClient, type EchoClient } from './proxyless-client.js';

function manifests(v1: EchoServer, v2: EchoServer, weights: [number, number]): unknown[] {
  const workload = (s: EchoServer, version: string): unknown => ({
    apiVersion: 'weft.dev/v1alpha1',
    kind: 'Workload',
    metadata: { name: `echo-${version}-0`, labels: { app: 'echo', version } },
    spec: {
      address: s.host,
      ports: [{ name: 'grpc', port: s.port, protocol: 'GRPC' }],
      serviceAccount: 'echo',
    },
  });
  const service = (version: string): unknown => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `echo-${version}` },
    spec: {
      selector: { app: 'echo', version },
      ports: [{ name: 'grpc', port: 7070, targetPort: 'grpc', appProtocol: 'grpc' }],
    },
  });
  return [
    workload(v1, 'v1'),
    workload(v2, 'v2'),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'echo' },
      spec: {
        selector: { app: 'echo' },
        ports: [{ name: 'grpc', port: 7070, targetPort: 'grpc', appProtocol: 'grpc' }],
      },
    },
    service('v1'),
    service('v2'),
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'GRPCRoute',
      metadata: { name: 'echo' },
      spec: {
        parentRefs: [{ kind: 'Service', name: 'echo', port: 7070 }],
        rules: [
          {
            matches: [{ headers: [{ name: 'x-canary', value: 'true' }] }],
            backendRefs: [{ name: 'echo-v2', port: 7070 }],
          },
          {
            backendRefs: [
              { name: 'echo-v1', port: 7070, weight: weights[0] },
              { name: 'echo-v2', port: 7070, weight: weights[1] },
            ],
          },
        ],
      },
    },
  ];
}

export async function runDemo(opts: { dataDir?: string; calls?: string }): Promise<void> {
  const maxCalls = opts.calls === undefined ? Infinity : Number(opts.calls);
  const tempDir = opts.dataDir === undefined ? mkdtempSync(join(tmpdir(), 'weft-demo-')) : undefined;
  const logger = createLogger('demo');
  logger.level = levelOf(process.env.WEFT_LOG_LEVEL, 'warn');
  const closers: Array<() => Promise<void> | void> = [];
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      for (const c of closers.reverse()) await c();
      if (tempDir) rmSync(tempDir, { recursive: true, force: true });
    })());
  process.once('SIGINT', () => void stop().then(() => process.exit(0)));
  process.once('SIGTERM', () => void stop().then(() => process.exit(0)));

  try {
    console.log('weft demo: starting a control plane (embedded store) …');
    const cp: RunningControlPlane = await startControlPlane({
      dataDir: opts.dataDir ?? tempDir!,
      apiAddr: '127.0.0.1:0',
      xdsAddr: '127.0.0.1:0',
      // grpc-js-xds offers only insecure channel credentials: the proxyless client needs this port.
      xdsPlaintextAddr: '127.0.0.1:0',
      trustDomain: 'weft.local',
      logger,
    });
    closers.push(() => cp.close());
    const tokenEnv = cp.adminTokenPath ? `WEFT_ADMIN_TOKEN=$(cat ${cp.adminTokenPath}) ` : '';
    console.log(`  api: ${cp.apiUrl}   (try: ${tokenEnv}WEFT_SERVER=${cp.apiUrl} npx weft get workloads)`);
    console.log(
      `  xds: ${cp.xdsAddress} (TLS), ${cp.xdsPlaintextAddress} (plaintext, for the proxyless client)`,
    );

    const v1 = await startEchoServer({ name: 'echo-v1' });
    const v2 = await startEchoServer({ name: 'echo-v2' });
    closers.push(
      () => v1.close(),
      () => v2.close(),
    );
    console.log(`  echo-v1 gRPC server on ${v1.address}, echo-v2 on ${v2.address}`);

    const admin = cp.adminToken ?? readFileSync(cp.adminTokenPath!, 'utf8').trim();
    const apply = async (weights: [number, number]): Promise<void> => {
      const res = await fetch(`${cp.apiUrl}/api/v1/apply`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
        body: JSON.stringify({ documents: manifests(v1, v2, weights) }),
      });
      if (!res.ok) throw new Error(`apply failed: ${res.status} ${await res.text()}`);
    };
    await apply([90, 10]);
    console.log('  applied: Workloads echo-v1-0/echo-v2-0, Services echo/echo-v1/echo-v2,');
    console.log('           GRPCRoute echo: x-canary: true → v2, otherwise v1 90% / v2 10%');

    const client: EchoClient = createEchoClient('xds:///echo', {
      xdsAddress: cp.xdsPlaintextAddress!,
      nodeId: 'demo-client',
    });
    closers.push(() => client.close());
    console.log('proxyless gRPC client calling xds:///echo (Ctrl-C to stop)');

    let n = 0;
    let tally: Record<string, number> = {};
    let shifted = false;
    while (n < maxCalls && !stopping) {
      n++;
      const canary = n % 10 === 0;
      try {
        const res = await client.echo(`call ${n}`, canary ? { 'x-canary': 'true' } : {});
        if (!canary) tally[res.server] = (tally[res.server] ?? 0) + 1;
        else console.log(`  call ${n} with x-canary: true → ${res.server}`);
      } catch (e) {
        console.log(`  call ${n} failed: ${(e as Error).message}`);
      }
      if (n % 20 === 0) {
        const summary = Object.entries(tally)
          .sort()
          .map(([k, v]) => `${k}: ${v}`)
          .join(', ');
        console.log(`  last ${Object.values(tally).reduce((a, b) => a + b, 0)} plain calls → ${summary}`);
        tally = {};
      }
      if (n === 100 && !shifted) {
        shifted = true;
        await apply([50, 50]);
        console.log('  route changed: v1 50% / v2 50% (no restart; the client gets it over xDS)');
      }
      if (!Number.isFinite(maxCalls)) await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await stop();
  }
}
