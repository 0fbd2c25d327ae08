// Starts real `weft` processes for end-to-end tests and guarantees they are stopped: every child
// is tracked and killed when the test file ends, even when an assertion failed half-way.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { WEFT_BIN } from './paths.js';
import {
  startControlPlane as startRunningControlPlane,
  type RunningControlPlane,
} from '../../src/control-plane/control-plane.js';
import { silentLogger } from '../../src/log.js';

const children = new Set<ChildProcess>();
/** Children started in a process group of their own (weft run and its app): killed as a group. */
const groups = new Set<number>();
const dirs = new Set<string>();

after(() => {
  for (const pid of groups) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  for (const c of children) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

export function tempDir(prefix = 'weft-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(d);
  return d;
}

/** Admin token per control plane API URL, so helpers and the CLI runs can authenticate. */
const adminTokens = new Map<string, string>();
/** Reusable join tokens per API URL, namespace and service account. */
const joinTokens = new Map<string, Promise<string>>();

/** The admin token of the control plane at `apiUrl` (started by these helpers). */
export function adminTokenFor(apiUrl: string): string | undefined {
  return adminTokens.get(apiUrl.replace(/\/+$/, ''));
}

/** Remembers a control plane's admin token (from its data dir or its RunningControlPlane). */
export function registerControlPlane(apiUrl: string, token: string): void {
  adminTokens.set(apiUrl.replace(/\/+$/, ''), token);
}

/**
 * fetch() that sends the admin token to a control plane these helpers started (any other URL,
 * a sidecar's admin endpoint say, goes as it is). `init.headers.authorization` set by the
 * caller (even to '') wins, for tests of authentication itself.
 */
export function apiFetch(url: string, init: RequestInit = {}): Promise<Response> {
  const origin = new URL(url).origin;
  const token = adminTokens.get(origin);
  const headers = new Headers(init.headers);
  if (token !== undefined && !headers.has('authorization')) headers.set('authorization', `Bearer ${token}`);
  if (headers.get('authorization') === '') headers.delete('authorization');
  return fetch(url, { ...init, headers });
}

/** A join token (any number of uses, 1 h) for a service account, made once per control plane. */
export function joinTokenFor(apiUrl: string, serviceAccount: string, namespace = 'default'): Promise<string> {
  const key = `${apiUrl}|${namespace}|${serviceAccount}`;
  let t = joinTokens.get(key);
  if (!t) {
    t = (async () => {
      const res = await apiFetch(`${apiUrl.replace(/\/+$/, '')}/api/v1/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ serviceAccount, namespace, ttlSeconds: 3600, maxUses: 0 }),
      });
      const body = (await res.json()) as { token?: string; message?: string };
      if (res.status !== 200 || !body.token)
        throw new Error(`join token: ${res.status} ${body.message ?? ''}`);
      return body.token;
    })();
    joinTokens.set(key, t);
    t.catch(() => joinTokens.delete(key));
  }
  return t;
}

/** A fresh single-use join token for `serviceAccount` (in `default`), and its id. */
export async function singleUseToken(
  apiUrl: string,
  serviceAccount: string,
): Promise<{ token: string; id: string }> {
  const res = await apiFetch(`${apiUrl}/api/v1/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ serviceAccount, maxUses: 1 }),
  });
  if (res.status !== 200) throw new Error(`join token: ${res.status} ${await res.text()}`);
  return (await res.json()) as { token: string; id: string };
}

/** How many times the token with this id was used (undefined: no such token). */
export async function tokenUses(apiUrl: string, id: string): Promise<number | undefined> {
  const res = await apiFetch(`${apiUrl}/api/v1/tokens`);
  return ((await res.json()) as { items: Array<{ id: string; uses: number }> }).items.find((t) => t.id === id)
    ?.uses;
}

/** `--outbound-addr`, `--inbound-addr` and `--admin-addr`, each on a free loopback port. */
export const FREE_PORT_FLAGS: readonly string[] = [
  '--outbound-addr',
  '127.0.0.1:0',
  '--inbound-addr',
  '127.0.0.1:0',
  '--admin-addr',
  '127.0.0.1:0',
];

export interface ControlPlaneProcess {
  proc: ChildProcess;
  apiUrl: string;
  adminToken: string;
  /** The TLS xDS port (SVID or join token required). */
  xdsAddress: string;
  xdsPort: number;
  /** The unauthenticated xDS port, when `xdsPlaintextPort` was given. */
  xdsPlaintextAddress: string | undefined;
  xdsPlaintextPort: number | undefined;
  stdout: () => string;
  stderr: () => string;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
}

function waitExit(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
}

export async function startControlPlane(opts: {
  dataDir: string;
  apiPort?: number;
  xdsPort?: number;
  /** Also serve plaintext xDS (for proxyless gRPC clients) on this port; 0 picks one. */
  xdsPlaintextPort?: number;
  timeoutMs?: number;
  /** More flags, e.g. `['--svid-ttl', '60s']`. */
  extra?: string[];
}): Promise<ControlPlaneProcess> {
  const proc = spawn(
    process.execPath,
    [
      WEFT_BIN,
      'control-plane',
      '--data-dir',
      opts.dataDir,
      '--api-addr',
      `127.0.0.1:${opts.apiPort ?? 0}`,
      '--xds-addr',
      `127.0.0.1:${opts.xdsPort ?? 0}`,
      ...(opts.xdsPlaintextPort === undefined
        ? []
        : ['--xds-plaintext-addr', `127.0.0.1:${opts.xdsPlaintextPort}`]),
      ...(opts.extra ?? []),
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, WEFT_LOG_LEVEL: process.env.WEFT_LOG_LEVEL ?? 'warn' },
    },
  );
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`control plane did not start within ${opts.timeoutMs ?? 15000} ms\n${out}\n${err}`));
    }, opts.timeoutMs ?? 15000);
    const check = (): void => {
      if (/^admin-token: /m.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout!.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(
        new Error(`control plane exited with ${code} before it was ready\nstdout:\n${out}\nstderr:\n${err}`),
      );
    });
  });
  const apiUrl = /^api: (\S+)$/m.exec(out)![1]!;
  const xdsAddress = /^xds: (\S+)$/m.exec(out)![1]!;
  const xdsPlaintextAddress = /^xds-plaintext: (\S+)$/m.exec(out)?.[1];
  const adminToken = readFileSync(/^admin-token: (.+)$/m.exec(out)![1]!, 'utf8').trim();
  registerControlPlane(apiUrl, adminToken);
  return {
    proc,
    apiUrl,
    adminToken,
    xdsAddress,
    xdsPort: portOf(xdsAddress),
    xdsPlaintextAddress,
    xdsPlaintextPort: xdsPlaintextAddress === undefined ? undefined : portOf(xdsPlaintextAddress),
    stdout: () => out,
    stderr: () => err,
    async stop() {
      proc.kill('SIGTERM');
      return waitExit(proc);
    },
    async kill() {
      proc.kill('SIGKILL');
      await waitExit(proc);
    },
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `weft ARGS…` to completion. */
export function runWeft(
  args: string[],
  opts: {
    server?: string;
    input?: string;
    cwd?: string;
    adminToken?: string | null;
    token?: string;
    /** More environment variables. */
    env?: Record<string, string>;
  } = {},
): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  if (opts.token !== undefined) env.WEFT_TOKEN = opts.token;
  if (opts.server) env.WEFT_SERVER = opts.server;
  // The admin token of a control plane these helpers started, unless the test says otherwise.
  const token = opts.adminToken === undefined && opts.server ? adminTokenFor(opts.server) : opts.adminToken;
  if (token) env.WEFT_ADMIN_TOKEN = token;
  else delete env.WEFT_ADMIN_TOKEN;
  const proc = spawn(process.execPath, [WEFT_BIN, ...args], {
    env,
    cwd: opts.cwd,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  proc.stdin.end(opts.input ?? '');
  return new Promise((resolve) =>
    proc.once('close', (code) => {
      children.delete(proc);
      resolve({ code, stdout, stderr });
    }),
  );
}

/** Polls `fn` until it returns a truthy value or the deadline passes (then throws with `what`). */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** An in-process control plane on ephemeral ports and a fresh data dir, for integration tests. */
function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

/** A control plane in this process; `plaintextXds` also opens the unauthenticated xDS port. */
export async function startInProcessControlPlane(
  opts: { plaintextXds?: boolean } = {},
): Promise<RunningControlPlane> {
  const cp = await startRunningControlPlane({
    dataDir: tempDir(),
    apiAddr: '127.0.0.1:0',
    xdsAddr: '127.0.0.1:0',
    ...(opts.plaintextXds ? { xdsPlaintextAddr: '127.0.0.1:0' } : {}),
    trustDomain: 'weft.local',
    logger: silentLogger(),
  });
  registerControlPlane(cp.apiUrl, cp.adminToken ?? readFileSync(cp.adminTokenPath!, 'utf8').trim());
  return cp;
}

export { freePort } from '../../src/free-port.js';

export interface MeshProcess {
  proc: ChildProcess;
  pid: number;
  outbound: string;
  inbound?: string;
  admin: string;
  stdout: () => string;
  stderr: () => string;
  /** Signal it and wait for exit; resolves with the exit code (null if killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * `weft run` (or, with no `command`, `weft sidecar`) for a service, all listeners on free
 * ports; resolves once it printed `ready` (registered, app answering), or what `until` matches.
 */
export async function startMeshProcess(opts: {
  service: string;
  controlPlane: string;
  appPort?: number;
  command?: string[];
  extra?: string[];
  timeoutMs?: number;
  /** Join token to use; default: a reusable one for the service account (the service name). */
  token?: string | null;
  /** What output to wait for instead of `ready` (its listener addresses, say). */
  until?: RegExp;
}): Promise<MeshProcess> {
  const flag = (name: string): string | undefined => {
    const i = (opts.extra ?? []).indexOf(name);
    return i >= 0 ? opts.extra![i + 1] : undefined;
  };
  const token =
    opts.token === undefined
      ? await joinTokenFor(
          opts.controlPlane,
          flag('--service-account') ?? opts.service,
          flag('--namespace') ?? flag('-n') ?? 'default',
        )
      : opts.token;
  const args = [
    WEFT_BIN,
    opts.command ? 'run' : 'sidecar',
    '--service',
    opts.service,
    '--control-plane',
    opts.controlPlane,
    ...FREE_PORT_FLAGS,
    ...(opts.appPort !== undefined ? ['--app-port', String(opts.appPort)] : []),
    ...(opts.extra ?? []),
    ...(opts.command ? ['--', ...opts.command] : []),
  ];
  // A process group of its own: SIGKILLing `weft run` leaves its app running (nothing can catch
  // SIGKILL), so cleanup kills the whole group.
  const proc = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: {
      ...process.env,
      WEFT_LOG_LEVEL: process.env.WEFT_LOG_LEVEL ?? 'warn',
      ...(token ? { WEFT_TOKEN: token } : {}),
    },
  });
  children.add(proc);
  groups.add(proc.pid!);
  proc.once('exit', () => children.delete(proc));
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${opts.service} not ready in ${opts.timeoutMs ?? 20000} ms\n${out}\n${err}`)),
      opts.timeoutMs ?? 20000,
    );
    const check = (): void => {
      if ((opts.until ?? /^ready$/m).test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout!.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${opts.service} exited with ${code} before ready\n${out}\n${err}`));
    });
  });
  const field = (k: string): string | undefined => new RegExp(`^${k}: (\\S+)$`, 'm').exec(out)?.[1];
  const inbound = field('inbound');
  return {
    proc,
    pid: proc.pid!,
    outbound: field('outbound')!,
    ...(inbound ? { inbound } : {}),
    admin: field('admin')!,
    stdout: () => out,
    stderr: () => err,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      // SIGKILL takes the app down with it (the group); SIGTERM lets weft run stop it itself.
      if (signal === 'SIGKILL') {
        try {
          process.kill(-proc.pid!, 'SIGKILL');
        } catch {
          // Already gone.
        }
      } else {
        proc.kill(signal);
      }
      return waitExit(proc);
    },
  };
}

/** GET http://<service><path> through an HTTP proxy (absolute form), as HTTP_PROXY clients do. */
export async function getViaProxy(
  proxy: string,
  service: string,
  path = '/',
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  const { request } = await import('node:http');
  const [host, port] = [
    proxy.slice(0, proxy.lastIndexOf(':')),
    Number(proxy.slice(proxy.lastIndexOf(':') + 1)),
  ];
  return new Promise((resolve, reject) => {
    const req = request(
      { host, port, path: `http://${service}${path}`, headers: { host: service, ...headers } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}
