// One run of load against a variant, with what its hops spent on it: CPU from /proc around the
// run, RSS sampled during it. Shared by the proxy bench and bench/cpu-latency.ts.

import { groupStats, type Child } from './processes.js';
import type { RateResult, SaturationResult } from './load.js';

const MiB = 1024 * 1024;
const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

export interface HopUsage {
  /** CPU seconds the hop used during the run. */
  cpuS: number;
  /** Largest VmRSS sampled during the run, MiB. */
  rssMaxMiB: number;
  /** VmHWM at the end of the run (peak over the process's life), MiB. */
  hwmMiB: number;
}

export interface Measured<T> {
  load: T;
  hops: HopUsage[];
  /** CPU seconds per 1,000 responses, both hops together. */
  cpuPer1k: number;
}

/** Runs one load and reads the hops' CPU and memory around it (RSS sampled every 250 ms). */
export async function measured<T extends { requests: number }>(
  hops: Child[],
  load: () => Promise<T>,
): Promise<Measured<T>> {
  const before = hops.map(groupStats);
  const rssMax = hops.map(() => 0);
  const sample = (): void =>
    hops.forEach((h, i) => {
      rssMax[i] = Math.max(rssMax[i]!, groupStats(h).rss);
    });
  const timer = setInterval(sample, 250);
  let result: T;
  try {
    result = await load();
  } finally {
    clearInterval(timer);
  }
  sample();
  const after = hops.map(groupStats);
  const usage = hops.map((_, i) => ({
    cpuS: round(after[i]!.cpu - before[i]!.cpu),
    rssMaxMiB: round(rssMax[i]! / MiB, 1),
    hwmMiB: round(after[i]!.hwm / MiB, 1),
  }));
  const cpu = usage.reduce((a, u) => a + u.cpuS, 0);
  return { load: result, hops: usage, cpuPer1k: round((cpu / Math.max(1, result.requests)) * 1000, 4) };
}

/** Any failed response means the set-up is broken, not that the proxy is slow. */
export function checkClean(name: string, r: RateResult | SaturationResult): void {
  const bad = 'non200' in r ? r.non200 : r.non2xx + r.socketErrors;
  if (bad > 0) throw new Error(`${name}: ${bad} failed responses in ${r.command}; the set-up is broken`);
}
