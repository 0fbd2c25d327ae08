// Real `weft sidecar` processes for end-to-end tests, addressed as host and port (started and
// cleaned up by weft-process.ts), plus what those tests read off them (RSS, cluster stats).

import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { eventually, startMeshProcess } from './weft-process.js';

export interface HostPort {
  host: string;
  port: number;
}

export interface SidecarProcess {
  proc: ChildProcess;
  pid: number;
  /** The workload name it registered (or would register) under. */
  workload: string;
  /** The app's HTTP proxy: where a client sends its calls to other services. */
  outbound: HostPort;
  /** Where mesh traffic for the app arrives; absent for a client-only sidecar. */
  inbound?: HostPort;
  admin: HostPort;
  /** Sends `signal` (SIGTERM by default) and waits for the exit; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  stdout(): string;
  stderr(): string;
}

export interface SidecarArgs {
  service: string;
  /** The app's port on 127.0.0.1; absent: a client-only sidecar. */
  appPort?: number;
  protocol?: 'HTTP' | 'HTTP2' | 'GRPC' | 'TCP';
  /** The control plane's API URL. */
  controlPlane: string;
  /** More flags, e.g. `['--upstream', 'svc:7070=15432']`. */
  extra?: string[];
  /** How long to wait for `ready` (ms). */
  timeoutMs?: number;
}

function hostPort(text: string): HostPort {
  const i = text.lastIndexOf(':');
  return { host: text.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(text.slice(i + 1)) };
}

/**
 * Starts `weft sidecar` with every listener on 127.0.0.1 and a free port, and resolves once it
 * printed `ready` (config in force, listeners open, workload registered if it has an app).
 */
export async function startSidecar(args: SidecarArgs): Promise<SidecarProcess> {
  const p = await startMeshProcess({
    service: args.service,
    controlPlane: args.controlPlane,
    ...(args.appPort !== undefined ? { appPort: args.appPort } : {}),
    extra: [...(args.protocol ? ['--protocol', args.protocol] : []), ...(args.extra ?? [])],
    ...(args.timeoutMs !== undefined ? { timeoutMs: args.timeoutMs } : {}),
  });
  return {
    proc: p.proc,
    pid: p.pid,
    workload: /^workload: (\S+)$/m.exec(p.stdout())![1]!,
    outbound: hostPort(p.outbound),
    ...(p.inbound ? { inbound: hostPort(p.inbound) } : {}),
    admin: hostPort(p.admin),
    stop: p.stop,
    stdout: p.stdout,
    stderr: p.stderr,
  };
}

export { freePort } from '../../src/free-port.js';

/** Resident set size of a live process in bytes, from /proc/<pid>/status (Linux only). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

interface ClusterStats {
  name: string;
  endpoints: Array<{ host: string; port: number; healthy: boolean }>;
}

/**
 * The sidecar's clusters (its admin `GET /clusters`) named for service `service` in namespace
 * `namespace`, with their endpoints: `outbound|<port>||<service>.<namespace>`.
 */
export async function serviceClusters(
  sidecar: SidecarProcess,
  service: string,
  namespace = 'default',
): Promise<ClusterStats[]> {
  const res = await fetch(`http://${sidecar.admin.host}:${sidecar.admin.port}/clusters`);
  if (!res.ok) throw new Error(`GET /clusters: ${res.status}`);
  const body = (await res.json()) as { clusters: ClusterStats[] };
  return body.clusters.filter((c) => c.name.endsWith(`||${service}.${namespace}`));
}

/**
 * A client-only sidecar and the sidecar of service `server` in front of the app on `appPort`;
 * resolves once the client has the server's endpoint. The caller stops them.
 */
export async function startSidecarPair(
  controlPlane: string,
  names: { client: string; server: string },
  appPort: number,
): Promise<{ client: SidecarProcess; server: SidecarProcess }> {
  const client = await startSidecar({ service: names.client, controlPlane });
  let server: SidecarProcess;
  try {
    server = await startSidecar({ service: names.server, appPort, controlPlane });
  } catch (e) {
    await client.stop();
    throw e;
  }
  await eventually(
    'the client sidecar to have the server endpoint',
    async () =>
      (await serviceClusters(client, names.server)).some((c) =>
        c.endpoints.some((e) => e.healthy && e.port === server.inbound!.port),
      ),
    10_000,
  );
  return { client, server };
}

/**
 * startSidecarPair in front of an app that answers each request with the
 * x-forwarded-client-cert it received. Everything is stopped when the test ends.
 */
export async function startXfccPair(
  t: { after: (fn: () => unknown) => void },
  controlPlane: string,
  names: { client: string; server: string },
): Promise<{ client: SidecarProcess; server: SidecarProcess }> {
  const app = http.createServer((req, res) => {
    req.resume();
    res.end(String(req.headers['x-forwarded-client-cert'] ?? ''));
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  t.after(() => {
    app.closeAllConnections();
    app.close();
  });
  const pair = await startSidecarPair(controlPlane, names, (app.address() as AddressInfo).port);
  t.after(() => pair.client.stop());
  t.after(() => pair.server.stop());
  return pair;
}
