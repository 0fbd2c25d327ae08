// Where a request's time goes between the processes of a variant, leg by leg, from a packet
// capture on loopback (`--legs`). hey's percentiles say how much two hops add; they do not say
// whether a slow request was slow in a proxy or while some other process held the CPU. The
// kernel's timestamps on each message entering and leaving each process do:
//
//   t0 request into the outbound hop      t3 response out of the upstream
//   t1 request into the inbound hop       t4 response out of the inbound hop
//   t2 request into the upstream          t5 response out of the outbound hop
//
// A "message" is the first data packet in a direction on a TCP connection after data the other
// way (a head and body sent in two packets count once), and the answer to a request is the next
// message the other way on its connection, so t0→t5, t1→t4 and t2→t3 are exact. Only which
// request a proxy passes on next is inferred: each process handles its requests in order, so a
// request into a hop is matched with the first unused request it sends on after that (greedy, in
// time order). With 10 clients at 1,000/s requests rarely overlap; a request matched with
// another's shows as time running backwards somewhere in its chain and is left out (counted).
//
// Weft's two sidecars carry every request on one mTLS connection (weft-mux/1), so on that hop a
// message is not a direction change on a connection but on a channel of it. Given the TLS keys
// (`keylog`, written by the client end), the capture is decrypted, the frames are read back with
// the sidecars' own frame reader, and each channel counts as a connection of its own: the same
// exact answers, the same greedy matching. Decryption needs each connection's handshake, so the
// hop is dialled while the capture runs and only what follows `from` is measured.
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { FrameReader, MuxProtocolError, type FrameSink } from '../../src/sidecar/proxy/mux-frames.js';
import { percentile } from '../xds/stats.js';
import { tempDir } from './processes.js';

export const LEG_NAMES = [
  'outbound hop, request',
  'inbound hop, request',
  'upstream',
  'inbound hop, response',
  'outbound hop, response',
] as const;
export type LegName = (typeof LEG_NAMES)[number];

export interface Percentiles {
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
}

export interface LegsResult {
  requests: number;
  /** Requests whose hops could not be matched consistently (left out of the figures). */
  unmatched: number;
  legs: Record<LegName, Percentiles>;
  /** t5 − t0: the whole chain as the wire saw it. */
  total: Percentiles;
  /** Over the slowest 1 % of requests by total: how many had each leg as their longest. */
  slowestByLeg: Record<LegName, number>;
  /** Over the slowest 1 %: the mean of each leg, ms. */
  slowestMeanMs: Record<LegName, number>;
}

export interface LegPorts {
  /** The outbound hop's listener (what the load generator connects to). */
  outbound: number;
  /** The inbound hop's mTLS listener. */
  inbound: number;
  upstream: number;
}

/** A capture of a multiplexed hop (see the top of this file). */
export interface MuxCapture {
  /** The TLS key log the client end of the hop writes (Node's `--tls-keylog`). */
  keylog: string;
  /** Runs inside the capture before the measured load: dials the hop and warms it up. */
  before(): Promise<void>;
}

const round3 = (x: number): number => Number(x.toFixed(3));

function percentiles(values: number[]): Percentiles {
  const at = (p: number): number => round3(percentile(values, p));
  return { p50Ms: at(50), p90Ms: at(90), p99Ms: at(99), p999Ms: at(99.9) };
}

/** Captures loopback traffic on the three ports while `load` runs, then splits it into legs. */
export async function measureLegs(
  ports: LegPorts,
  load: () => Promise<unknown>,
  mux?: MuxCapture,
): Promise<LegsResult> {
  const file = join(tempDir('weft-proxy-bench-legs-'), 'legs.pcap');
  const filter = `tcp port ${ports.outbound} or tcp port ${ports.inbound} or tcp port ${ports.upstream}`;
  // Headers are enough for connections that carry one request at a time: 128 bytes of each
  // packet. A multiplexed hop is decrypted, which takes whole packets.
  const cap = spawn('tshark', ['-i', 'lo', '-s', mux ? '0' : '128', '-w', file, '-f', filter], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let from = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      let text = '';
      cap.stderr!.setEncoding('utf8').on('data', (d: string) => {
        text += d;
        if (/Capturing on/.test(text)) resolve();
      });
      cap.once('exit', (code) =>
        reject(new Error(`tshark exited (${code}) before capturing: ${text.trim()}`)),
      );
    });
    if (mux) await mux.before();
    from = Date.now();
    await load();
    // Let the last responses reach the capture.
    await new Promise((r) => setTimeout(r, 200));
  } finally {
    cap.kill('SIGINT');
    await new Promise((r) => (cap.exitCode === null ? cap.once('exit', r) : r(undefined)));
  }
  const fields = [
    '-T',
    'fields',
    '-e',
    'frame.time_epoch',
    '-e',
    'tcp.stream',
    '-e',
    'tcp.srcport',
    '-e',
    'tcp.dstport',
  ];
  if (!mux) return legsFromPackets(exchanges(tshark([file, '-Y', 'tcp.len > 0', ...fields])), ports, from);
  const plain = tshark([file, '-Y', `tcp.len > 0 and not tcp.port == ${ports.inbound}`, ...fields]);
  // Decrypted bytes have no field of their own (no dissector knows weft-mux/1): they are read
  // from the hex dump, under a summary line of the four fields.
  const decrypted = tshark([
    file,
    '-o',
    `tls.keylog_file:${mux.keylog}`,
    '-d',
    `tcp.port==${ports.inbound},tls`,
    '-Y',
    `tcp.port == ${ports.inbound} and tls.record.content_type == 23`,
    '-o',
    `gui.column.format:${SUMMARY_COLUMNS}`,
    '-P',
    '-x',
  ]);
  return legsFromPackets(exchanges(`${plain}\n${muxMessages(decrypted)}`), ports, from);
}

const SUMMARY_COLUMNS = ['frame.time_epoch', 'tcp.stream', 'tcp.srcport', 'tcp.dstport']
  .map((f, i) => `"${i}","%Cus:${f}"`)
  .join(',');

function tshark(args: string[]): string {
  const r = spawnSync('tshark', ['-r', ...args], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`tshark -r failed: ${r.stderr}`);
  return r.stdout;
}

const SUMMARY = /^\s*(\d+\.\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$/;
/** A line of a hex dump: offset, up to 16 bytes, their ASCII. */
const HEX_LINE = /^[0-9a-f]{4,} {2}((?:[0-9a-f]{2} ?)+)/;

/**
 * The decrypted bytes of a multiplexed hop, as tshark prints them with `-P -x` (a summary line
 * of time, stream and ports, then a hex dump of the frame and of each record decrypted in it), as
 * the lines a plain capture gives: one per DATA frame, with the stream `<tcp stream>/<channel>`,
 * so that exchanges() treats every channel as a connection of its own.
 */
export function muxMessages(dump: string): string {
  const directions = new Map<string, MuxDirection>();
  const out: string[] = [];
  let current: MuxDirection | undefined;
  let decrypted = false;
  let bytes: number[] = [];
  const record = (): void => {
    if (current !== undefined && bytes.length > 0) current.record(Buffer.from(bytes));
    bytes = [];
  };
  for (const line of dump.split('\n')) {
    const s = SUMMARY.exec(line);
    if (s) {
      record();
      const [stream, src, dst] = [s[2]!, s[3]!, s[4]!];
      const key = `${stream}:${src}`;
      current = directions.get(key);
      if (current === undefined) directions.set(key, (current = new MuxDirection(stream, src, dst, out)));
      current.ts = s[1]!;
      decrypted = false;
    } else if (line.endsWith(' bytes):')) {
      // A new dump: "Frame (…)", "Reassembled TCP (…)" or a record, "Decrypted TLS (…)".
      record();
      decrypted = line.startsWith('Decrypted TLS');
    } else if (decrypted) {
      const hex = HEX_LINE.exec(line);
      if (hex) for (const b of hex[1]!.trim().split(' ')) bytes.push(parseInt(b, 16));
    }
  }
  record();
  return out.join('\n');
}

/** One direction of a multiplexed connection: its frames, each DATA frame a line. */
class MuxDirection implements FrameSink {
  private reader = new FrameReader(this);
  /** The time of the packet being read. */
  ts = '';
  constructor(
    private readonly stream: string,
    private readonly src: string,
    private readonly dst: string,
    private readonly out: string[],
  ) {}

  record(plaintext: Buffer): void {
    try {
      this.reader.push(plaintext);
    } catch (err) {
      if (!(err instanceof MuxProtocolError)) throw err;
      // Not frames (a capture that began mid-frame): read on from the next record.
      this.reader = new FrameReader(this);
    }
  }

  onData(channel: number): void {
    this.out.push(`${this.ts}\t${this.stream}/${channel}\t${this.src}\t${this.dst}`);
  }
  onEnd(): void {}
  onReset(): void {}
  onCredit(): void {}
}

/** A message into a process and the answer to it on the same connection (NaN if none yet). */
interface Exchange {
  t: number;
  dst: number;
  answeredAt: number;
}

/**
 * The first data packet of each message (direction changes per TCP connection), as requests into
 * a port, each with the time of the first packet of the answer on the same connection.
 */
export function exchanges(fields: string): Exchange[] {
  const open = new Map<string, Exchange | undefined>();
  const lastSrc = new Map<string, number>();
  const out: Exchange[] = [];
  for (const line of fields.split('\n')) {
    const [ts, stream, src, dst] = line.split('\t');
    if (ts === undefined || stream === undefined || src === undefined || dst === undefined) continue;
    const from = Number(src);
    if (lastSrc.get(stream) === from) continue; // more of the same message
    lastSrc.set(stream, from);
    const t = Number(ts) * 1000;
    const pending = open.get(stream);
    if (pending !== undefined && pending.dst !== Number(dst)) {
      pending.answeredAt = t; // the answer: data the other way
      open.set(stream, undefined);
      continue;
    }
    const ex: Exchange = { t, dst: Number(dst), answeredAt: NaN };
    open.set(stream, ex);
    out.push(ex);
  }
  return out.sort((a, b) => a.t - b.t);
}

/** `from`: requests into the outbound hop before it (a warm-up) are left out. */
export function legsFromPackets(all: Exchange[], ports: LegPorts, from = 0): LegsResult {
  const into = (port: number): Exchange[] => all.filter((e) => e.dst === port);
  // The k-th request a process receives is the k-th it passes on: each request with the first
  // unused one after it on the next leg. The answers are then exact (the same connection).
  const next = (from: ReadonlyArray<Exchange | undefined>, to: Exchange[]): Array<Exchange | undefined> => {
    const matched: Array<Exchange | undefined> = [];
    let j = 0;
    for (const e of from) {
      if (e === undefined) {
        matched.push(undefined); // unmatched on the leg before: nothing to follow
        continue;
      }
      while (j < to.length && to[j]!.t < e.t) j++;
      matched.push(to[j++]);
    }
    return matched;
  };
  const front = into(ports.outbound);
  const middle = next(front, into(ports.inbound));
  const back = next(middle, into(ports.upstream));
  const rows: number[][] = [];
  let inconsistent = 0;
  front.forEach((f, i) => {
    const m = middle[i];
    const b = back[i];
    // Matched with the warm-up's requests too, so that they do not take later requests' hops.
    if (m === undefined || b === undefined || f.t < from) return;
    const times = [f.t, m.t, b.t, b.answeredAt, m.answeredAt, f.answeredAt];
    if (times.some((t) => Number.isNaN(t))) return; // cut off by the end of the capture
    // A request matched with another's hop shows as time running backwards: left out, counted.
    if (times.some((t, j) => j > 0 && t < times[j - 1]!)) inconsistent++;
    else rows.push(times);
  });
  const legValues = LEG_NAMES.map((_, k) => rows.map((t) => t[k + 1]! - t[k]!));
  const totals = rows.map((t) => t[5]! - t[0]!);
  const slowest = [...rows.keys()]
    .sort((a, b) => totals[b]! - totals[a]!)
    .slice(0, Math.max(1, rows.length / 100));
  const byLeg = Object.fromEntries(LEG_NAMES.map((n) => [n, 0])) as Record<LegName, number>;
  for (const i of slowest) {
    let longest = 0;
    for (let k = 1; k < LEG_NAMES.length; k++) if (legValues[k]![i]! > legValues[longest]![i]!) longest = k;
    byLeg[LEG_NAMES[longest]!]++;
  }
  const mean = (k: number): number =>
    round3(slowest.reduce((s, i) => s + legValues[k]![i]!, 0) / slowest.length);
  return {
    requests: rows.length,
    unmatched: inconsistent,
    legs: Object.fromEntries(LEG_NAMES.map((n, k) => [n, percentiles(legValues[k]!)])) as Record<
      LegName,
      Percentiles
    >,
    total: percentiles(totals),
    slowestByLeg: byLeg,
    slowestMeanMs: Object.fromEntries(LEG_NAMES.map((n, k) => [n, mean(k)])) as Record<LegName, number>,
  };
}
