// The load generators and what is read from them: h2load and hey at a constant rate (latency
// percentiles from their per-request logs, so they are computed here, nearest-rank, rather than
// taken from a summary), wrk flat out (requests per second). All use HTTP/1.1 keep-alive, one
// connection per client, worker or wrk connection. And the handshake-rate client
// (handshake-client.ts): new mTLS connections to an inbound hop, one request each.

import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { percentile } from '../xds/stats.js';
import type { HandshakeConfig, HandshakeReport } from './handshake-client.js';
import type { TlsTarget } from './tls-client.js';

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    // In the bench's process group (unlike the proxies): Ctrl-C stops it at once by itself.
    const p = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    running.add(p.pid!);
    p.once('error', reject);
    // 'close', not 'exit': the last of its output (h2load's summary, hey's last CSV lines) may
    // still be in the pipe when the process exits.
    p.once('close', (code, signal) => {
      running.delete(p.pid!);
      if (code === 0) resolve(out);
      else
        reject(new Error(`${command} ${args.join(' ')} exited with ${code ?? signal}:\n${err.slice(-2000)}`));
    });
  });
}

const running = new Set<number>();

/** Kills a load generator still running (Ctrl-C or an error elsewhere). */
export function killLoad(): void {
  for (const pid of running) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  running.clear();
}

/**
 * How requests arrive at a constant rate. `spread`: one hey process per client connection
 * (`-c 1`), their starts staggered over one tick period, so the clients' ticks interleave and
 * requests arrive evenly. `lockstep`: one hey with many workers (`-c W`); hey starts every
 * worker's ticker at once, so each tick is a burst of W simultaneous requests.
 */
export type Arrival = 'spread' | 'lockstep';

/**
 * Which program makes the constant-rate load. `h2load` (nghttp2's, in C): one process per
 * client, ~50–70 µs of CPU per request here. `hey` (Go): ~250–300 µs per request, more than two
 * proxies together at 1,000/s, on the same two cores as the proxies; and it reports times to
 * 0.1 ms. Kept for the lockstep bursts (h2load has no such mode) and for comparison.
 */
export type Generator = 'h2load' | 'hey';

/** A constant-rate run: `rate` in all over `clients` connections, made by `generator`. */
export interface RateSpec {
  /** Requests per second asked for, in total. */
  rate: number;
  clients: number;
  arrival: Arrival;
  generator: Generator;
}

export interface RateResult extends RateSpec {
  seconds: number;
  /** Responses received (the logs list every response; failed requests are not in them). */
  requests: number;
  /** Answers other than 200, and (h2load) requests that failed, errored or timed out. */
  non200: number;
  /** Responses per second achieved; below the asked rate means the generator fell behind. */
  achievedRps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  command: string;
}

function heyArgs(
  url: string,
  host: string | undefined,
  workers: number,
  perWorker: number,
  seconds: number,
): string[] {
  const args = ['-c', String(workers), '-q', String(perWorker), '-z', `${seconds}s`, '-o', 'csv'];
  if (host) args.push('-host', host);
  args.push(url);
  return args;
}

/** Response times in ms and the count of non-200 answers from hey's CSV. */
export function readHeyCsv(out: string, latencies: number[]): number {
  let non200 = 0;
  for (const line of out.split('\n').slice(1)) {
    if (line === '') continue;
    // response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset
    const f = line.split(',');
    const s = Number(f[0]);
    if (f.length !== 8 || f[0] === '' || !Number.isFinite(s) || s < 0)
      throw new Error(`hey CSV line not understood: ${JSON.stringify(line)}`);
    latencies.push(s * 1000);
    if (f[6] !== '200') non200++;
  }
  return non200;
}

/**
 * `rate` requests per second over `clients` keep-alive connections for `seconds`. hey's -q is
 * per worker, so each client asks for rate/clients. Each worker waits for a tick before each
 * request and ticks that pass during a slow response are dropped (closed loop), so a stall shows
 * up as fewer requests, not as queueing: the achieved rate is recorded to make that visible.
 */
export async function heyAtRate(
  url: string,
  host: string | undefined,
  rate: number,
  clients: number,
  seconds: number,
  arrival: Arrival,
): Promise<RateResult> {
  const perClient = rate / clients;
  let outputs: string[];
  let command: string;
  if (arrival === 'lockstep') {
    const args = heyArgs(url, host, clients, perClient, seconds);
    outputs = [await run('hey', args)];
    command = `hey ${args.join(' ').replace(url, '<url>')}`;
  } else {
    const args = heyArgs(url, host, 1, perClient, seconds);
    // One tick period spread over the clients; process start-up jitter randomises it further.
    const stagger = 1000 / perClient / clients;
    const runs: Array<Promise<string>> = [];
    for (let i = 0; i < clients; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, stagger));
      runs.push(run('hey', args));
    }
    outputs = await Promise.all(runs);
    command = `${clients} × hey ${args.join(' ').replace(url, '<url>')}, started ${round2(stagger)} ms apart`;
  }
  const latencies: number[] = [];
  let non200 = 0;
  for (const out of outputs) non200 += readHeyCsv(out, latencies);
  return summarise({ rate, clients, arrival, generator: 'hey' }, seconds, latencies, non200, command);
}

function summarise(
  spec: RateSpec,
  seconds: number,
  latencies: number[],
  non200: number,
  command: string,
): RateResult {
  return {
    ...spec,
    seconds,
    requests: latencies.length,
    non200,
    achievedRps: Math.round(latencies.length / seconds),
    p50Ms: round2(percentile(latencies, 50)),
    p90Ms: round2(percentile(latencies, 90)),
    p99Ms: round2(percentile(latencies, 99)),
    maxMs: round2(latencies.reduce((a, b) => Math.max(a, b), 0)),
    command,
  };
}

function h2loadArgs(
  url: string,
  host: string | undefined,
  perClient: number,
  seconds: number,
  log: string,
): string[] {
  const args = ['--h1', '-c', '1', '--rps', String(perClient), '-D', String(seconds), '--log-file', log];
  if (host) args.push('-H', `:authority: ${host}`);
  args.push(url);
  return args;
}

/**
 * h2load's `--log-file`: one line per response, `start (µs since the epoch) TAB status TAB
 * duration (µs)`. Appends the times in ms to `latencies`; returns the count of non-200 answers.
 * Throws on a line that is not that shape.
 */
export function readH2loadLog(text: string, latencies: number[]): number {
  let non200 = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const f = line.split('\t');
    const us = Number(f[2]);
    if (f.length !== 3 || !/^\d+$/.test(f[1]!) || !Number.isFinite(us) || us < 0)
      throw new Error(`h2load log line not understood: ${JSON.stringify(line)}`);
    latencies.push(us / 1000);
    if (f[1] !== '200') non200++;
  }
  return non200;
}

/**
 * Requests h2load counted as failed, errored or timed out, from its summary line
 * (`requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout`).
 */
export function h2loadFailures(summary: string): number {
  const m =
    /^requests: \d+ total, \d+ started, \d+ done, \d+ succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/m.exec(
      summary,
    );
  if (!m) throw new Error(`could not read h2load's summary:\n${summary.slice(-2000)}`);
  return Number(m[1]) + Number(m[2]) + Number(m[3]);
}

/**
 * `rate` in all from `clients` h2load processes, one connection each (`-c 1 --rps rate/clients`),
 * started a tick period over `clients` apart like heyAtRate's spread. A tick that finds the
 * previous request unanswered is sent when it is (h2load queues it; hey drops it): at 1,000/s
 * over ten connections that takes a 10 ms response.
 */
export async function h2loadAtRate(
  url: string,
  host: string | undefined,
  rate: number,
  clients: number,
  seconds: number,
  dir: string,
): Promise<RateResult> {
  const perClient = rate / clients;
  const stagger = 1000 / perClient / clients;
  const logs: string[] = [];
  const runs: Array<Promise<string>> = [];
  for (let i = 0; i < clients; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, stagger));
    const log = join(dir, `h2load-${process.pid}-${Date.now()}-${i}.log`);
    logs.push(log);
    runs.push(run('h2load', h2loadArgs(url, host, perClient, seconds, log)));
  }
  const outputs = await Promise.all(runs);
  const latencies: number[] = [];
  let non200 = 0;
  for (const out of outputs) non200 += h2loadFailures(out);
  for (const log of logs) non200 += readH2loadLog(readFileSync(log, 'utf8'), latencies);
  const spec: RateSpec = { rate, clients, arrival: 'spread', generator: 'h2load' };
  return summarise(spec, seconds, latencies, non200, rateCommand(spec, seconds));
}

/** A constant-rate run as `spec` says; `dir` holds h2load's logs. */
export function atRate(
  spec: RateSpec,
  url: string,
  host: string | undefined,
  seconds: number,
  dir: string,
): Promise<RateResult> {
  if (spec.generator === 'hey') return heyAtRate(url, host, spec.rate, spec.clients, seconds, spec.arrival);
  if (spec.arrival !== 'spread') throw new Error("h2load runs only spread clients; bursts are hey's");
  return h2loadAtRate(url, host, spec.rate, spec.clients, seconds, dir);
}

const round2 = (x: number): number => Number(x.toFixed(2));

export interface SaturationResult {
  rps: number;
  requests: number;
  non2xx: number;
  socketErrors: number;
  p50Ms: number;
  p99Ms: number;
  command: string;
}

function wrkMs(text: string, label: string): number {
  const m = new RegExp(`^\\s*${label}\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(text);
  if (!m) return NaN;
  const scale = m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1;
  return Number((Number(m[1]) * scale).toFixed(2));
}

/** `wrk -t T -c C -d Ds --latency`: the most requests per second the path takes. */
export async function wrkSaturate(
  url: string,
  host: string | undefined,
  threads: number,
  connections: number,
  seconds: number,
): Promise<SaturationResult> {
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '--latency'];
  if (host) args.push('-H', `Host: ${host}`);
  args.push(url);
  const out = await run('wrk', args);
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(out);
  const total = /^\s*(\d+) requests in/m.exec(out);
  if (!rps || !total) throw new Error(`could not read wrk's output:\n${out}`);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return {
    rps: Math.round(Number(rps[1])),
    requests: Number(total[1]),
    non2xx,
    socketErrors,
    p50Ms: wrkMs(out, '50%'),
    p99Ms: wrkMs(out, '99%'),
    command: `wrk ${args
      .map((a) => (a.includes(' ') ? `'${a}'` : a))
      .join(' ')
      .replace(url, '<url>')}`,
  };
}

/** Flat out: wrk's threads and connections, for the saturating runs and the warm-up. */
export const WRK = { threads: 2, connections: 64 };

/**
 * Node's JIT, nginx's and HAProxy's pools and the kernel's socket caches all start cold: before
 * anything is measured, `seconds` of 1,000/s in bursts of 50, then half as long flat out.
 */
export async function warmUp(url: string, host: string | undefined, seconds: number): Promise<void> {
  await heyAtRate(url, host, 1000, 50, seconds, 'lockstep');
  await wrkSaturate(url, host, WRK.threads, WRK.connections, Math.max(1, Math.round(seconds / 2)));
}

/** How a constant-rate run is made, as the reports print it (the URL and host left out). */
export function rateCommand(spec: RateSpec, seconds: number): string {
  const { rate, clients, arrival } = spec;
  const perClient = rate / clients;
  const apart = `started ${1000 / perClient / clients} ms apart`;
  if (spec.generator === 'h2load')
    return `${clients} × h2load --h1 -c 1 --rps ${perClient} -D ${seconds} --log-file <log> [-H ':authority: bench-upstream'] <url>, ${apart}`;
  return arrival === 'lockstep'
    ? `hey -c ${clients} -q ${perClient} -z ${seconds}s -o csv [-host bench-upstream] <url>`
    : `${clients} × hey -c 1 -q ${perClient} -z ${seconds}s -o csv [-host bench-upstream] <url>, ${apart}`;
}

/**
 * The order the variants run in, in round `r`: the start rotates, so each variant takes its
 * turn first and last, and the machine's drift spreads over all of them.
 */
export function roundOrder<T>(variants: readonly T[], r: number): T[] {
  return variants.map((_, i) => variants[(i + r) % variants.length]!);
}

export interface HandshakeResult extends HandshakeReport {
  /** Connections completed per second. */
  rate: number;
  /** Same as ok, for the CPU-per-request bookkeeping. */
  requests: number;
  command: string;
}

const HANDSHAKE_CLIENT = fileURLToPath(new URL('./handshake-client.js', import.meta.url));

/**
 * New mTLS connections to `target` for `seconds`: `workers` threads in one Node process, each
 * with `connections` in flight. The config, with the client's key, goes through a file in
 * `dir` readable by its owner only.
 */
export async function handshakeRate(
  target: TlsTarget,
  workers: number,
  connections: number,
  seconds: number,
  dir: string,
): Promise<HandshakeResult> {
  const config: HandshakeConfig = { target, workers, connections, seconds };
  const file = join(dir, `handshake-${target.port}.json`);
  writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
  const out = await run(process.execPath, [HANDSHAKE_CLIENT, file]);
  const report = JSON.parse(out) as HandshakeReport;
  return {
    ...report,
    rate: Math.round(report.ok / seconds),
    requests: report.ok,
    command:
      `node dist/bench/proxy/handshake-client.js: ${workers} threads × ${connections} connections in ` +
      `flight for ${seconds} s; each a full TLS 1.3 handshake with a client certificate, then ` +
      '`GET /` with `Connection: close`',
  };
}
