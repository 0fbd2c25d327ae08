// `npm run bench:cpu-latency`: what a hop's CPU per request costs in latency at 1,000 requests/s
// on this machine, and so how much CPU per request the proxy bench's target (added p99 ≤ 1 ms)
// leaves a sidecar. The proxy bench's byte pipe (node-pipe.ts: Node sockets and TLS, no HTTP) is
// made to spin for B µs of CPU on every read, before the bytes go on, for several B; each runs
// beside Weft's two sidecars and no proxy at all, at the proxy bench's measured rate (10 hey
// clients, interleaved ticks, 1 kB answers). If the pipe at Weft's CPU per request has Weft's
// latency, Weft's added latency is its CPU per request and nothing else it does; the B at which
// the pipe's added p99 crosses 1 ms is the budget. Rounds interleave the variants, as in the
// proxy bench, so that drift of this shared machine spreads over all of them.
//
// A spin loop is CPU and hardly any code. The pipe can instead be made to call N distinct small
// functions on every read (code-load.ts), whose cost back to back is measured here first: how much
// more they cost between requests says what a proxy's code, as opposed to its CPU, costs.
//
//   node dist/bench/cpu-latency.js [--rounds 5] [--seconds 8] [--burns 0,15,30,45] [--code 200]
//                                  [--no-doc]

import { loadavg } from 'node:os';
import { flags, UsageError } from './flags.js';
import { createBenchPki } from './proxy/bench-pki.js';
import { heyAtRate, killLoad, rateCommand, roundOrder, warmUp } from './proxy/load.js';
import { checkClean, measured } from './proxy/measure.js';
import { killAll, tempDir } from './proxy/processes.js';
import { codeLoad, warmMicros } from './proxy/code-load.js';
import { ensureTools } from './proxy/tools.js';
import { direct, startNodePipeChain, startUpstream, startWeft, type Topology } from './proxy/topologies.js';
import { machine, runBench, updateBenchmarksDoc, writeResults } from './report.js';
import { median } from './xds/stats.js';

const RATE = 1000;
const CLIENTS = 10;
const TARGET_ADDED_P99_MS = 1;

interface Args {
  rounds: number;
  seconds: number;
  /** Spin, µs per read: one variant of the pipe each. */
  burns: number[];
  /** Distinct functions called per read (code-load.ts): one variant of the pipe each. */
  code: number[];
  doc: boolean;
}

/** `--flag a,b,c` as whole numbers ≥ 0. */
function counts(flag: string, text: string, unit: string): number[] {
  const values = text.split(',').map((b) => {
    const n = Number(b);
    if (!Number.isInteger(n) || n < 0)
      throw new UsageError(`${flag}: expected whole ${unit} ≥ 0, got "${b}"`);
    return n;
  });
  // Each value is one variant, named by it: a repeat would merge two variants' rounds.
  return [...new Set(values)];
}

function parseArgs(argv: string[]): Args {
  const args: Args = { rounds: 5, seconds: 8, burns: [0, 15, 30, 45], code: [200], doc: true };
  for (const { name, value, positive, unknown } of flags(argv, 'cpu-latency')) {
    if (name === '--rounds') args.rounds = positive(value());
    else if (name === '--seconds') args.seconds = positive(value());
    else if (name === '--burns') args.burns = counts(name, value(), 'microseconds');
    else if (name === '--code')
      args.code = counts(name, value(), 'numbers of functions').filter((n) => n > 0);
    else if (name === '--no-doc') args.doc = false;
    else unknown();
  }
  return args;
}

interface Variant {
  label: string;
  topology: Topology;
}

interface Run {
  /** Responses, and responses per second: fewer than asked means hey dropped ticks (a stall). */
  requests: number;
  achievedRps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  /** CPU µs per response, per hop [outbound, inbound]. */
  cpuUs: number[];
}

/** One measured run at RATE: the load's figures and each hop's CPU µs per response. */
async function measure(t: Topology, seconds: number): Promise<Run> {
  const m = await measured(t.hops, () => heyAtRate(t.url, t.host, RATE, CLIENTS, seconds, 'spread'));
  checkClean(t.name, m.load);
  const { requests, achievedRps, p50Ms, p90Ms, p99Ms } = m.load;
  const cpuUs = m.hops.map((h) => Math.round((h.cpuS / requests) * 1e6));
  return { requests, achievedRps, p50Ms, p90Ms, p99Ms, cpuUs };
}

/**
 * Added p99 as the proxy bench computes it: the variant's median p99 over the rounds minus
 * direct's (a difference per round would let one hiccup in a direct run decide it).
 */
function table(variants: Variant[], runs: Map<string, Run[]>): string {
  const directP99 = median(runs.get(variants[0]!.label)!.map((x) => x.p99Ms));
  const rows = [
    '| variant | CPU per request, outbound / inbound hop | p50 | p90 | p99 | added p99 | p99 by round |',
    '|---|---:|---:|---:|---:|---:|---|',
  ];
  for (const v of variants) {
    const r = runs.get(v.label)!;
    const m = (f: (x: Run) => number): number => median(r.map(f));
    const cpu =
      v.topology.hops.length === 0 ? '—' : [0, 1].map((i) => `${m((x) => x.cpuUs[i]!)} µs`).join(' / ');
    const added = v.topology.hops.length === 0 ? '—' : `${(m((x) => x.p99Ms) - directP99).toFixed(1)} ms`;
    rows.push(
      `| ${v.label} | ${cpu} | ${m((x) => x.p50Ms)} ms | ${m((x) => x.p90Ms)} ms | ${m((x) => x.p99Ms)} ms | ` +
        `${added} | ${r.map((x) => x.p99Ms).join(', ')} |`,
    );
  }
  return rows.join('\n');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  // The proxy bench's tools (hey, wrk and nginx are the ones used here), installed when missing.
  ensureTools();
  const started = new Date();
  console.log(
    `cpu-latency bench: ${args.rounds} round(s) of ${args.seconds} s at ${RATE}/s; pipe burns ${args.burns.join(', ')} µs ` +
      `and code ${args.code.join(', ')} functions per read`,
  );
  // What each code load costs back to back, here, before the hops run it between requests.
  const codeWarmUs = new Map(args.code.map((n) => [n, Number(warmMicros(codeLoad(n)).toFixed(2))]));
  const upstream = await startUpstream();
  const pki = await createBenchPki(tempDir('weft-cpu-latency-pki-'));
  const variants: Variant[] = [{ label: 'direct (no proxy)', topology: direct(upstream.port) }];
  try {
    variants.push({ label: 'Weft sidecars', topology: await startWeft(upstream.port, undefined) });
    for (const b of args.burns)
      variants.push({
        label: b === 0 ? 'Node byte pipe × 2' : `Node byte pipe × 2, +${b} µs per read`,
        topology: await startNodePipeChain(upstream.port, pki, { burnUs: b }),
      });
    for (const n of args.code)
      variants.push({
        label: `Node byte pipe × 2, ${n} functions per read (${codeWarmUs.get(n)} µs warm)`,
        topology: await startNodePipeChain(upstream.port, pki, { codeFns: n }),
      });
    // The proxy bench's warm-up (~65,000 requests; a sidecar's JIT settles after ~20,000).
    for (const v of variants) await warmUp(v.topology.url, v.topology.host, 5);
    const runs = new Map<string, Run[]>(variants.map((v) => [v.label, []]));
    const loadAverages: number[] = [];
    for (let r = 0; r < args.rounds; r++) {
      loadAverages.push(Number(loadavg()[0]!.toFixed(2)));
      console.log(`round ${r + 1}/${args.rounds} (load average ${loadAverages.at(-1)})`);
      for (const v of roundOrder(variants, r)) {
        const run = await measure(v.topology, args.seconds);
        runs.get(v.label)!.push(run);
        console.log(
          `  ${v.label.padEnd(36)} p50 ${run.p50Ms} ms, p99 ${run.p99Ms} ms` +
            (run.cpuUs.length > 0 ? `, CPU per request ${run.cpuUs.join(' / ')} µs` : ''),
        );
      }
    }
    const command = `node dist/bench/cpu-latency.js ${process.argv.slice(2).join(' ')}`.trim();
    const hey = rateCommand(
      { rate: RATE, clients: CLIENTS, arrival: 'spread', generator: 'hey' },
      args.seconds,
    );
    const out = writeResults('cpu-latency', started, {
      date: started.toISOString(),
      command,
      heyCommand: hey,
      machine: machine(),
      loadAverages,
      args,
      codeWarmUs: Object.fromEntries(codeWarmUs),
      variants: variants.map((v) => ({ label: v.label, runs: runs.get(v.label) })),
    });
    const m = machine();
    const t = table(variants, runs);
    console.log(`\n${t}\n\nwrote ${out}`);
    if (args.doc)
      await updateBenchmarksDoc(
        'cpu-latency',
        [
          `Last run ${started.toISOString().slice(0, 10)}: \`${command}\` — ${args.rounds} rounds of \`${hey}\`, ` +
            `medians over the rounds; added p99 = the variant's p99 minus direct's (target ` +
            `${TARGET_ADDED_P99_MS} ms). CPU per request is each hop's CPU seconds over the run (all its threads) ` +
            `per response. Machine: ${m.cpus} vCPU (${m.cpuModel}), Node ${m.node}. Load average at the rounds' ` +
            `starts: ${loadAverages.join(', ')}.`,
          '',
          t,
        ].join('\n'),
        "What a hop's CPU per request costs in latency at 1,000/s",
      );
  } finally {
    for (const v of variants.reverse()) await v.topology.stop();
    await upstream.stop();
  }
}

// Whatever happens, no proxy, upstream or load generator outlives the bench.
runBench(main, () => {
  killLoad();
  killAll();
});
