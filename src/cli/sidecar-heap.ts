// V8 heap sizing for the long-lived sidecar process (`weft sidecar`, `weft run`). V8's defaults
// suit a short burst of work with memory to spare; a sidecar allocates a little per request for
// as long as it runs, next to its app. Both settings are applied at run time, because a sidecar
// is started as `weft sidecar` as often as `node …/main.js sidecar`, and a size given on the
// command line or in NODE_OPTIONS is left alone.
//
// Young generation (the two semi-spaces new objects are allocated in): V8 grows each to 16 MiB
// on a busy process, so under load a sidecar holds ~30 MiB for objects that live for one
// request. At 2 MiB per semi-space its RSS under saturating load drops by ~30 MiB for no
// measurable loss of requests per second (1 MiB costs ~10 % more CPU and promotes more).
// `--max-semi-space-size` is read only at start-up; what V8 reads at run time is the factor it
// grows the young generation by, so growth is allowed (factor 2) only while one more doubling
// stays within the cap and stopped (factor 1) otherwise, re-checked after each garbage
// collection. The check reads the semi-space's capacity, not the memory committed to it, which
// can halve after a full collection and so once let it double past the cap.
//
// Old generation: after each full collection V8 lets it grow up to 4x what survived before the
// next one; under sustained load that filled a sidecar's old space with promoted garbage (35-48
// MiB after 30 s against ~18 MiB live). `--heap-growing-percent`, read at each full collection,
// bounds the growth to 1.25x: old space stays within ~4 MiB of what is live (~14 MiB), for a
// full collection every few seconds at saturation instead of every ten (each ~10 ms of CPU,
// mostly off the main thread: well under 1 % of a core).

import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

const MiB = 1024 * 1024;

/**
 * The capacity of one semi-space, in usable bytes (a little under its nominal size, for page
 * headers). Not `space_size`: that is the memory committed to both semi-spaces, and a full
 * collection uncommits the idle one, so it halves while the capacity stays where it was.
 */
function semiSpaceCapacity(): number {
  const s = getHeapSpaceStatistics().find((x) => x.space_name === 'new_space');
  return s ? s.space_used_size + s.space_available_size : 0;
}

/** Whether the process was started with one of these V8 flags, which then stands. */
function givenAtStart(names: readonly string[]): boolean {
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  // V8 takes `_` and `-` alike in flag names.
  return flags.some((f) => names.some((n) => f.replace(/_/g, '-').startsWith(`--${n}`)));
}

/** Young and old generation limits for a sidecar process: call before its modules load. */
export function tuneHeapForSidecar(): void {
  capYoungGeneration();
  if (!givenAtStart(['heap-growing-percent'])) setFlagsFromString('--heap-growing-percent=25');
}

/**
 * Keeps each semi-space at most `semiSpaceMiB` MiB from now on. Call it before the sidecar's
 * modules load: growth is off until the first check, which runs once the event loop turns.
 */
export function capYoungGeneration(semiSpaceMiB = 2): void {
  if (givenAtStart(['max-semi-space-size', 'max-heap-size', 'semi-space-growth-factor'])) return;
  const cap = semiSpaceMiB * MiB;
  let factor = 0;
  const setFactor = (f: number): void => {
    if (f === factor) return;
    factor = f;
    setFlagsFromString(`--semi-space-growth-factor=${f}`);
  };
  setFactor(1);
  // A doubling is allowed only when its result is still within the cap.
  const check = (): void => setFactor(2 * semiSpaceCapacity() <= cap ? 2 : 1);
  new PerformanceObserver(check).observe({ entryTypes: ['gc'] });
  setImmediate(check);
}
