// The control plane under test, as a child process of its own so that its memory and CPU can be
// read from /proc separately from the load generator's. Every process started here is tracked
// and killed by killAll(), which the bench calls on every way out (normal end, error, Ctrl-C).

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const WEFT_BIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const live = new Set<ChildProcess>();
const dirs = new Set<string>();

/** SIGKILLs every child still running and removes temp dirs; safe to call more than once. */
export function killAll(): void {
  for (const c of live) c.kill('SIGKILL');
  live.clear();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

export interface ProcStats {
  /** Resident set size now, bytes. */
  rss: number;
  /** Peak resident set size over the process's life (VmHWM), bytes. */
  hwm: number;
  /** User + system CPU consumed so far, seconds. */
  cpu: number;
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100; // Linux's USER_HZ almost everywhere
    }
  }
  return clockTicks;
}

export function procStats(pid: number): ProcStats {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  // The command name (field 2) may contain spaces; fields are counted after its closing paren.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return { rss: kb('VmRSS'), hwm: kb('VmHWM'), cpu: (utime + stime) / ticksPerSecond() };
}

export interface ControlPlaneProcess {
  pid: number;
  apiUrl: string;
  /** The plaintext xDS port (the bench's clients stand in for proxies without SVIDs). */
  xdsAddress: string;
  /** The admin token the control plane wrote to its data dir. */
  adminToken: string;
  stop(): Promise<void>;
}

export async function startControlPlane(
  opts: { cpuProfDir?: string; timeoutMs?: number } = {},
): Promise<ControlPlaneProcess> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const nodeFlags = opts.cpuProfDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', opts.cpuProfDir];
  const dataDir = mkdtempSync(join(tmpdir(), 'weft-bench-'));
  dirs.add(dataDir);
  const proc = spawn(
    process.execPath,
    [
      ...nodeFlags,
      WEFT_BIN,
      'control-plane',
      '--data-dir',
      dataDir,
      '--api-addr',
      '127.0.0.1:0',
      '--xds-addr',
      '127.0.0.1:0',
      // The simulated proxies have no SVIDs: they use the plaintext port, so TLS is not measured.
      '--xds-plaintext-addr',
      '127.0.0.1:0',
    ],
    // Per-stream info logs would make the control plane spend its time writing 10,000 lines.
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WEFT_LOG_LEVEL: 'warn' } },
  );
  live.add(proc);
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    // Keep only the tail: a warn per stream at 10,000 clients must not grow without bound.
    err = (err + d).slice(-20_000);
  });
  const exited = new Promise<void>((resolve) =>
    proc.once('exit', (code, signal) => {
      if (process.env.WEFT_BENCH_DEBUG) console.error('control plane exit', code, signal);
      resolve();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`control plane did not start:\n${out}\n${err}`)),
      timeoutMs,
    );
    proc.stdout!.on('data', () => {
      if (/^admin-token: /m.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`control plane exited with ${code}:\n${out}\n${err}`));
    });
  });
  return {
    pid: proc.pid!,
    apiUrl: /^api: (\S+)$/m.exec(out)![1]!,
    xdsAddress: /^xds-plaintext: (\S+)$/m.exec(out)![1]!,
    adminToken: readFileSync(/^admin-token: (.+)$/m.exec(out)![1]!, 'utf8').trim(),
    async stop() {
      // SIGTERM first: a clean exit is what makes --cpu-prof write its profile.
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
      live.delete(proc);
      rmSync(dataDir, { recursive: true, force: true });
      dirs.delete(dataDir);
    },
  };
}
