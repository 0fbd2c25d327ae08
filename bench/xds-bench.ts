// `npm run bench:xds`: how fast a route change reaches 100, 1,000 and 10,000 ADS clients, and
// what it costs the control plane. A script, not a test: it starts the real `weft
// control-plane` as a child process, loads a mesh of 1,000 services through the REST API,
// connects N simulated proxyless-gRPC ADS clients from this process, then applies one route
// change at a time and records, per client, the time from the API request's start until that
// client sent its ACK for the new version. Results go to bench/results/ and BENCHMARKS.md.
//
//   node dist/bench/xds-bench.js [--clients 100,1000,10000] [--repeats 5] [--services 1000]
//                                [--connections per-client|N] [--no-doc] [--cpu-prof DIR]

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { GrpcChannel } from '../src/xds/grpc-channel.js';
import { AdsClient } from '../src/xds/ads-client.js';
import { TypeUrl } from '../src/xds/types.js';
import {
  killAll,
  procStats,
  startControlPlane,
  type ControlPlaneProcess,
} from './xds/control-plane-process.js';
import { dialledServices, meshBatches, route, subscriptionsFor } from './xds/mesh-fixture.js';
import { median, percentile } from './xds/stats.js';
import { flags } from './flags.js';
import { machine, runBench, updateBenchmarksDoc, writeResults } from './report.js';

const SUBSCRIBED_TYPES = [
  TypeUrl.Cluster,
  TypeUrl.ClusterLoadAssignment,
  TypeUrl.Listener,
  TypeUrl.RouteConfiguration,
];

interface Args {
  clients: number[];
  repeats: number;
  services: number;
  /** Connections per size: one per client, or at most this many (streams spread over them). */
  connections: 'per-client' | number;
  doc: boolean;
  /** Directory for a CPU profile of the control plane (node --cpu-prof), one per size. */
  cpuProf: string | undefined;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    clients: [100, 1000, 10_000],
    repeats: 5,
    services: 1000,
    connections: 'per-client',
    doc: true,
    cpuProf: undefined,
  };
  for (const { name: flag, value, positive, unknown } of flags(argv, 'xds-bench')) {
    if (flag === '--clients') args.clients = value().split(',').map(positive);
    else if (flag === '--repeats') args.repeats = positive(value());
    else if (flag === '--services') args.services = positive(value());
    else if (flag === '--connections') {
      const v = value();
      args.connections = v === 'per-client' ? v : positive(v);
    } else if (flag === '--no-doc') args.doc = false;
    else if (flag === '--cpu-prof') args.cpuProf = value();
    else unknown();
  }
  return args;
}

async function api<T>(cp: ControlPlaneProcess, path: string, body: unknown): Promise<T> {
  const res = await fetch(cp.apiUrl + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${cp.adminToken}` },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${text.slice(0, 2000)}`);
  return JSON.parse(text) as T;
}

/** Established TCP connections to the xDS port, as the kernel counts them (IPv4 loopback). */
function establishedTo(port: number): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let n = 0;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1]?.endsWith(`:${hexPort}`) && f[3] === '01') n++;
  }
  return n;
}

function openFileLimit(): number {
  const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m ? Number(m[1]) : Infinity;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

interface ChangeResult {
  apiMs: number;
  ackP50Ms: number;
  ackP99Ms: number;
  ackMaxMs: number;
  /** DiscoveryResponse bytes all clients received for the change. */
  bytes: number;
  responses: Record<string, number>;
  cpCpuS: number;
  cpRssMiB: number;
  cpHwmMiB: number;
  benchCpuS: number;
}

interface SizeResult {
  clients: number;
  connections: number;
  connectionsMeasured: number;
  loadMs: number;
  connectMs: number;
  idleRssMiB: number;
  cpCpuTotalS: number;
  cpHwmMiB: number;
  changes: ChangeResult[];
  median: Omit<ChangeResult, 'responses'>;
}

const MiB = 1024 * 1024;
const round = (x: number, digits = 1): number => Number(x.toFixed(digits));

/** Per change: when each client ACKed the new route version, and what they received. */
interface Window {
  t0: number;
  base: string[];
  times: Float64Array;
  remaining: number;
  bytes: number;
  responses: Record<string, number>;
}

async function runSize(args: Args, n: number): Promise<SizeResult> {
  const conns = args.connections === 'per-client' ? n : Math.min(n, args.connections);
  const cp = await startControlPlane(args.cpuProf === undefined ? {} : { cpuProfDir: args.cpuProf });
  const clients: AdsClient[] = [];
  // One HTTP/2 connection per slot, shared by the clients assigned to it.
  const channels = Array.from({ length: conns }, () => new GrpcChannel({ address: cp.xdsAddress }));
  try {
    const tLoad = performance.now();
    for (const batch of meshBatches(args.services, 500)) await api(cp, '/api/v1/apply', { documents: batch });
    const loadMs = performance.now() - tLoad;

    let window: Window | undefined;
    const acked: Array<Set<string>> = [];
    let ready = 0;
    const port = Number(cp.xdsAddress.slice(cp.xdsAddress.lastIndexOf(':') + 1));
    const tConnect = performance.now();
    for (let i = 0; i < n; i++) {
      const client = new AdsClient({
        address: cp.xdsAddress,
        node: { id: `bench-${i}`, cluster: 'bench', locality: {} },
        subscriptions: subscriptionsFor(dialledServices(i, args.services), args.services),
        decode: false,
        channel: channels[i % conns]!,
      });
      const seen = new Set<string>();
      acked.push(seen);
      client.on('response', (e) => {
        if (window === undefined) return;
        window.bytes += e.bytes;
        const short = e.typeUrl.slice(e.typeUrl.lastIndexOf('.') + 1);
        window.responses[short] = (window.responses[short] ?? 0) + 1;
      });
      client.on('ack', (e) => {
        if (seen.size < SUBSCRIBED_TYPES.length) {
          seen.add(e.typeUrl);
          if (seen.size === SUBSCRIBED_TYPES.length) ready++;
        }
        const w = window;
        if (w !== undefined && e.typeUrl === TypeUrl.RouteConfiguration && e.version !== w.base[i]) {
          if (Number.isNaN(w.times[i]!)) {
            w.times[i] = performance.now() - w.t0;
            w.remaining--;
          }
        }
      });
      client.on('nack', (e) => {
        throw new Error(`client ${i} NACKed ${e.typeUrl}: ${e.message ?? ''}`);
      });
      clients.push(client);
      client.start();
      // Let the event loop breathe so thousands of handshakes do not all time out together.
      if (i % 250 === 249) await new Promise((r) => setImmediate(r));
    }
    await until(`${n} clients to ACK the initial state`, () => ready === n, 60_000 + n * 20);
    const connectMs = performance.now() - tConnect;
    const connectionsMeasured = establishedTo(port);
    await sleep(500);
    const idle = procStats(cp.pid);
    console.log(
      `  ${n} clients on ${connectionsMeasured} connections ready in ${connectMs.toFixed(0)} ms; ` +
        `control plane RSS ${(idle.rss / MiB).toFixed(0)} MiB`,
    );

    const changes: ChangeResult[] = [];
    for (let r = 0; r < args.repeats; r++) {
      await sleep(300);
      const before = procStats(cp.pid);
      const benchBefore = process.cpuUsage();
      const w: Window = {
        t0: 0,
        base: clients.map((c) => c.version(TypeUrl.RouteConfiguration)),
        times: new Float64Array(n).fill(NaN),
        remaining: n,
        bytes: 0,
        responses: {},
      };
      window = w;
      w.t0 = performance.now();
      await api(cp, '/api/v1/apply', { documents: [route(0, args.services, 60 + (r % 30))] });
      const apiMs = performance.now() - w.t0;
      await until(`all ${n} clients to ACK change ${r + 1}`, () => w.remaining === 0, 120_000);
      // The server still has ACKs to read after the last one is sent; let it finish them.
      await sleep(200);
      window = undefined;
      const after = procStats(cp.pid);
      const bench = process.cpuUsage(benchBefore);
      const times = [...w.times];
      const c: ChangeResult = {
        apiMs: round(apiMs),
        ackP50Ms: round(percentile(times, 50)),
        ackP99Ms: round(percentile(times, 99)),
        ackMaxMs: round(Math.max(...times)),
        bytes: w.bytes,
        responses: w.responses,
        cpCpuS: round(after.cpu - before.cpu, 2),
        cpRssMiB: round(after.rss / MiB),
        cpHwmMiB: round(after.hwm / MiB),
        benchCpuS: round((bench.user + bench.system) / 1e6, 2),
      };
      changes.push(c);
      console.log(
        `  change ${r + 1}: ack p50 ${c.ackP50Ms} ms, p99 ${c.ackP99Ms} ms, max ${c.ackMaxMs} ms; ` +
          `${c.bytes} B in ${JSON.stringify(c.responses)}; cp CPU ${c.cpCpuS} s, RSS ${c.cpRssMiB} MiB`,
      );
    }
    const end = procStats(cp.pid);
    const med = (key: keyof Omit<ChangeResult, 'responses'>): number => median(changes.map((c) => c[key]));
    return {
      clients: n,
      connections: conns,
      connectionsMeasured,
      loadMs: round(loadMs, 0),
      connectMs: round(connectMs, 0),
      idleRssMiB: round(idle.rss / MiB),
      cpCpuTotalS: round(end.cpu, 2),
      cpHwmMiB: round(end.hwm / MiB),
      changes,
      median: {
        apiMs: med('apiMs'),
        ackP50Ms: med('ackP50Ms'),
        ackP99Ms: med('ackP99Ms'),
        ackMaxMs: med('ackMaxMs'),
        bytes: med('bytes'),
        cpCpuS: med('cpCpuS'),
        cpRssMiB: med('cpRssMiB'),
        cpHwmMiB: med('cpHwmMiB'),
        benchCpuS: med('benchCpuS'),
      },
    };
  } finally {
    for (const c of clients) c.close();
    for (const ch of channels) ch.close();
    await cp.stop();
  }
}

function table(results: SizeResult[]): string {
  const rows = [
    '| clients | TCP conns | ACK p50 | ACK p99 | ACK max | bytes sent / change | CP CPU / change | CP RSS (peak) | CP CPU total | connect all |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    const m = r.median;
    rows.push(
      `| ${r.clients.toLocaleString('en')} | ${r.connectionsMeasured.toLocaleString('en')} | ${m.ackP50Ms} ms | ${m.ackP99Ms} ms | ` +
        `${m.ackMaxMs} ms | ${(m.bytes / 1024).toFixed(1)} KiB | ${m.cpCpuS} s | ${m.cpRssMiB} MiB (${r.cpHwmMiB} MiB) | ` +
        `${r.cpCpuTotalS} s | ${(r.connectMs / 1000).toFixed(1)} s |`,
    );
  }
  return rows.join('\n');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const biggest = Math.max(...args.clients);
  const limit = openFileLimit();
  if (args.connections === 'per-client' && biggest + 100 > limit) {
    throw new Error(
      `${biggest} connections need ${biggest + 100} open files in this process, but ulimit -n is ${limit}: ` +
        `raise it (ulimit -n ${biggest * 2}) or pass --connections N`,
    );
  }
  const started = new Date();
  console.log(
    `xDS bench: ${args.services} services, clients ${args.clients.join(', ')}, ${args.repeats} changes each`,
  );
  const results: SizeResult[] = [];
  for (const n of args.clients) {
    console.log(`${n} clients:`);
    results.push(await runSize(args, n));
  }
  const command = `node dist/bench/xds-bench.js ${process.argv.slice(2).join(' ')}`.trim();
  const summary = {
    date: started.toISOString(),
    command,
    loadGeneratorNodeFlags: process.execArgv,
    machine: machine(),
    ...args,
    results,
  };
  const out = writeResults('xds', started, summary);
  const m = machine();
  const section = [
    `Last run ${started.toISOString().slice(0, 10)}: \`${command}\` — ${args.services} services, ` +
      `${args.repeats} route changes per size, medians over the changes. Machine: ${m.cpus} vCPU (${m.cpuModel}), ` +
      `${m.memoryGiB} GiB, Node ${m.node}; shared and noisy, so treat differences under ~20 % as noise.`,
    '',
    table(results),
  ].join('\n');
  console.log('\n' + table(results));
  console.log(`\nwrote ${out}`);
  if (args.doc)
    await updateBenchmarksDoc(
      'xds-bench',
      section,
      'xDS fan-out: one route change to 100, 1,000 and 10,000 ADS clients',
    );
}

// The load generator holds 10,000 clients' state (~500 MB of heap); with V8's default 16 MB
// semi-space its young-generation collections take 10–50 ms each and land inside the measured
// ACK times, which real proxies (one process each) would not see. So the bench re-runs itself
// with a larger young generation. The control plane runs with Node's defaults.
const SEMI_SPACE_FLAG = '--max-semi-space-size=64';

if (!process.execArgv.some((a) => a.startsWith('--max-semi-space-size'))) {
  const child = spawn(process.execPath, [SEMI_SPACE_FLAG, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
  });
  // Ctrl-C reaches the child too (same process group); a signal sent to this pid alone is passed on.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 130 : 1)));
} else {
  // Whatever happens, no control plane outlives the bench.
  runBench(main, killAll);
}
