// The handshake-rate load generator, a process of its own (started by load.ts, so the bench's
// clean-up kills it): `node handshake-client.js CONFIG.json`. Each of `workers` threads keeps
// `connections` mTLS connections in flight for `seconds`, each a full handshake with a client
// certificate and one request with `Connection: close` (tls-client.ts), a new one as soon as
// the last one's server closed. Prints one JSON line: successes and failures within the
// window, the failures' reasons, what was negotiated, and this process's CPU time, which
// shows whether the client rather than the server was the limit.

import { readFileSync } from 'node:fs';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { clientContext, oneRequest, type Negotiated, type TlsTarget } from './tls-client.js';

export interface HandshakeConfig {
  target: TlsTarget;
  workers: number;
  /** Connections in flight per worker. */
  connections: number;
  seconds: number;
}

export interface HandshakeReport {
  /** Connections that completed (handshake, 200, the whole body) within the window. */
  ok: number;
  failures: number;
  /** Failure reasons and their counts (the most frequent few). */
  errors: Record<string, number>;
  negotiated: Negotiated | undefined;
  seconds: number;
  /** User + system CPU of the client process, seconds. */
  cpuS: number;
}

type WorkerReport = Omit<HandshakeReport, 'seconds' | 'cpuS'>;

async function work(config: HandshakeConfig): Promise<WorkerReport> {
  const context = clientContext(config.target);
  const deadline = Date.now() + config.seconds * 1000;
  const report: WorkerReport = { ok: 0, failures: 0, errors: {}, negotiated: undefined };
  const loop = async (): Promise<void> => {
    while (Date.now() < deadline) {
      const r = await oneRequest(config.target, context);
      // A connection still open at the deadline is not counted either way.
      if (Date.now() > deadline) return;
      if (r.ok) {
        report.ok++;
        report.negotiated ??= r.negotiated;
      } else {
        report.failures++;
        report.errors[r.error] = (report.errors[r.error] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: config.connections }, loop));
  return report;
}

async function main(): Promise<void> {
  const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as HandshakeConfig;
  // Never outlive the run by much, even if the bench that started this died without a word.
  setTimeout(() => process.exit(3), (config.seconds + 30) * 1000).unref();
  const cpu0 = process.cpuUsage();
  const reports = await Promise.all(
    Array.from(
      { length: config.workers },
      () =>
        new Promise<WorkerReport>((resolve, reject) => {
          const w = new Worker(new URL(import.meta.url), { workerData: config });
          w.once('message', resolve);
          w.once('error', reject);
          w.once('exit', (code) => reject(new Error(`handshake worker exited with ${code}`)));
        }),
    ),
  );
  const cpu = process.cpuUsage(cpu0);
  const errors: Record<string, number> = {};
  for (const r of reports) for (const [k, n] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + n;
  const top = Object.entries(errors)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5);
  const out: HandshakeReport = {
    ok: reports.reduce((a, r) => a + r.ok, 0),
    failures: reports.reduce((a, r) => a + r.failures, 0),
    errors: Object.fromEntries(top),
    negotiated: reports.find((r) => r.negotiated)?.negotiated,
    seconds: config.seconds,
    cpuS: (cpu.user + cpu.system) / 1e6,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

if (isMainThread) {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
      process.exit(1);
    },
  );
} else {
  void work(workerData as HandshakeConfig).then((r) => parentPort!.postMessage(r));
}
