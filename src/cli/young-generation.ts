// Caps V8's young generation (the two semi-spaces new objects are allocated in) for the
// long-lived sidecar process. By default V8 grows each semi-space to 16 MiB on a busy process,
// so under load a sidecar holds ~30 MiB of young generation for objects that live for one
// request; at 2 MiB per semi-space its RSS under saturating load drops by ~30 MiB for no
// measurable loss of requests per second (1 MiB costs ~10 % more CPU and promotes more).
//
// `--max-semi-space-size` would say this, but V8 reads it only when the process starts, and a
// sidecar is started as `weft sidecar` as often as `node …/main.js sidecar`. What V8 does read at
// run time is the factor it grows the young generation by, so growth is allowed (factor 2) only
// while it is below the cap and stopped (factor 1) once it is there, re-checked after each
// garbage collection. A single synchronous burst could still grow it one step past the cap
// before the check runs; the cap is then 4 MiB, still far below the default.

import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

const MiB = 1024 * 1024;

function youngGenerationBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/** Whether the process was started with its own young generation size, which then stands. */
function sizedByFlag(): boolean {
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  return flags.some((f) => /^--(max-semi-space-size|max-heap-size|semi-space-growth-factor)\b/.test(f));
}

/**
 * Keeps each semi-space at most `semiSpaceMiB` MiB from now on. Call it first thing: growth
 * stays off until the event loop has turned once, so start-up work (module loading, the xDS
 * protos) cannot grow it past the cap in one go.
 */
export function capYoungGeneration(semiSpaceMiB = 2): void {
  if (sizedByFlag()) return;
  const cap = 2 * semiSpaceMiB * MiB;
  let factor = 0;
  const setFactor = (f: number): void => {
    if (f === factor) return;
    factor = f;
    setFlagsFromString(`--semi-space-growth-factor=${f}`);
  };
  setFactor(1);
  const check = (): void => setFactor(youngGenerationBytes() < cap ? 2 : 1);
  new PerformanceObserver(check).observe({ entryTypes: ['gc'] });
  setImmediate(check);
}
