// Starts real `weft` processes for end-to-end tests and guarantees they are stopped: every child
// is tracked and killed when the test file ends, even when an assertion failed half-way.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
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
const dirs = new Set<string>();

after(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

export function tempDir(prefix = 'weft-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(d);
  return d;
}

export interface ControlPlaneProcess {
  proc: ChildProcess;
  apiUrl: string;
  xdsAddress: string;
  xdsPort: number;
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
  timeoutMs?: number;
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
      if (/^api: /m.test(out)) {
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
  return {
    proc,
    apiUrl,
    xdsAddress,
    xdsPort: Number(xdsAddress.slice(xdsAddress.lastIndexOf(':') + 1)),
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
  opts: { server?: string; input?: string; cwd?: string } = {},
): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (opts.server) env.WEFT_SERVER = opts.server;
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
export async function startInProcessControlPlane(): Promise<RunningControlPlane> {
  return startRunningControlPlane({
    dataDir: tempDir(),
    apiAddr: '127.0.0.1:0',
    xdsAddr: '127.0.0.1:0',
    trustDomain: 'weft.local',
    logger: silentLogger(),
  });
}
