// Starts real `weft sidecar` processes for end-to-end tests and guarantees they are stopped: every
// child is tracked and killed when the test file ends, even when an assertion failed half-way.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { after } from 'node:test';
import { WEFT_BIN } from './paths.js';

const children = new Set<ChildProcess>();

after(() => {
  for (const c of children) c.kill('SIGKILL');
});

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

function waitExit(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
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
  const argv = [
    WEFT_BIN,
    'sidecar',
    '--service',
    args.service,
    '--control-plane',
    args.controlPlane,
    '--outbound-addr',
    '127.0.0.1:0',
    '--inbound-addr',
    '127.0.0.1:0',
    '--admin-addr',
    '127.0.0.1:0',
    ...(args.appPort !== undefined ? ['--app-port', String(args.appPort)] : []),
    ...(args.protocol ? ['--protocol', args.protocol] : []),
    ...(args.extra ?? []),
  ];
  const proc = spawn(process.execPath, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, WEFT_LOG_LEVEL: process.env.WEFT_LOG_LEVEL ?? 'warn' },
  });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const timeoutMs = args.timeoutMs ?? 20_000;
  await new Promise<void>((resolve, reject) => {
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      reject(
        new Error(
          `weft sidecar --service ${args.service} exited (${code ?? signal}) before it was ready\n` +
            `stdout:\n${out}\nstderr:\n${err}`,
        ),
      );
    };
    const timer = setTimeout(() => {
      proc.off('exit', onExit);
      proc.stdout!.off('data', check);
      proc.kill('SIGKILL');
      reject(
        new Error(`weft sidecar --service ${args.service} not ready within ${timeoutMs} ms\n${out}\n${err}`),
      );
    }, timeoutMs);
    function check(): void {
      if (/^ready$/m.test(out)) {
        clearTimeout(timer);
        proc.off('exit', onExit);
        proc.stdout!.off('data', check);
        resolve();
      }
    }
    proc.stdout!.on('data', check);
    proc.once('exit', onExit);
  });
  const line = (key: string): string | undefined => new RegExp(`^${key}: (\\S+)$`, 'm').exec(out)?.[1];
  const inbound = line('inbound');
  return {
    proc,
    pid: proc.pid!,
    workload: line('workload')!,
    outbound: hostPort(line('outbound')!),
    ...(inbound ? { inbound: hostPort(inbound) } : {}),
    admin: hostPort(line('admin')!),
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return waitExit(proc);
    },
    stdout: () => out,
    stderr: () => err,
  };
}

/** A port that was free a moment ago (bound to 0, read, closed). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

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
