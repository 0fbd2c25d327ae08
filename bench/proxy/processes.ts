// Child processes of the proxy bench: proxies, the upstream and the control plane. Each child is
// the leader of its own process group, so that one kill reaches nginx's workers too (killing an
// nginx master with SIGKILL would orphan them); killAll() is called on every way out of the
// bench. Also: free loopback ports, and CPU and memory of a whole process group from /proc.

import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { procStats } from '../xds/control-plane-process.js';

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  /** Standard output so far (whole), for the lines children print when ready. */
  out(): string;
  /** The tail of standard error, for error messages. */
  err(): string;
  exited: Promise<void>;
}

const live = new Set<Child>();
const dirs = new Set<string>();

export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  // nginx started as root runs its workers as an unprivileged user, who must reach the files.
  chmodSync(d, 0o755);
  dirs.add(d);
  return d;
}

function signalGroup(c: Child, signal: NodeJS.Signals): void {
  try {
    process.kill(-c.pid, signal);
  } catch {
    // already gone
  }
}

/** SIGKILLs every child's process group and removes temp dirs; safe to call more than once. */
export function killAll(): void {
  for (const c of live) signalGroup(c, 'SIGKILL');
  live.clear();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

export function removeDir(d: string): void {
  rmSync(d, { recursive: true, force: true });
  dirs.delete(d);
}

export function start(
  name: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Child {
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env, detached: true });
  if (proc.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-8000)));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const child: Child = { name, proc, pid: proc.pid, out: () => out, err: () => err, exited };
  live.add(child);
  void exited.then(() => live.delete(child));
  return child;
}

/**
 * SIGTERM, then SIGKILL after `graceMs`. A graceful exit matters for Weft sidecars under
 * --cpu-prof, which write their profile only when they exit by themselves.
 */
export async function stop(c: Child, graceMs = 15_000): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) {
    signalGroup(c, 'SIGKILL'); // nginx workers of a master that died
    return;
  }
  signalGroup(c, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(c, 'SIGKILL'), graceMs);
  await c.exited;
  clearTimeout(timer);
  signalGroup(c, 'SIGKILL');
}

/** Resolves when `test` holds for the child's standard output; rejects if it exits first. */
export function waitForOutput(c: Child, test: RegExp, timeoutMs = 20_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      const m = test.exec(c.out());
      if (m) {
        cleanup();
        resolve(m);
      }
      return m !== null;
    };
    const onExit = (): void => {
      cleanup();
      reject(new Error(`${c.name} exited before printing ${test}:\n${c.out()}\n${c.err()}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${c.name} did not print ${test} within ${timeoutMs} ms:\n${c.out()}\n${c.err()}`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      c.proc.stdout!.off('data', check);
      c.proc.off('exit', onExit);
    };
    if (check()) return;
    c.proc.stdout!.on('data', check);
    c.proc.once('exit', onExit);
  });
}

/** A port that was free a moment ago, for processes that cannot be told to take port 0 (nginx, HAProxy). */
export { freePort } from '../../src/free-port.js';

export interface GroupStats {
  /** Sum of VmRSS over the group's processes, bytes. */
  rss: number;
  /** Sum of each process's VmHWM, bytes (an upper bound of the group's peak). */
  hwm: number;
  /** utime + stime of the group's live processes, seconds. */
  cpu: number;
  processes: number;
}

/** Processes whose process group is `pgid`: a proxy and, for nginx, its workers. */
function groupMembers(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid) pids.push(Number(entry));
    } catch {
      // exited while being read
    }
  }
  return pids;
}

/** CPU and memory of a child's whole process group (its pid is the group id). */
export function groupStats(c: Child): GroupStats {
  const total: GroupStats = { rss: 0, hwm: 0, cpu: 0, processes: 0 };
  for (const pid of groupMembers(c.pid)) {
    try {
      const s = procStats(pid);
      total.rss += s.rss;
      total.hwm += s.hwm;
      total.cpu += s.cpu;
      total.processes++;
    } catch {
      // exited while being read
    }
  }
  return total;
}
