// Timers behind an interface so lease expiry can be driven by a manual clock in unit tests. The
// real clock unrefs its timers: a pending lease must never keep a process alive on its own.

export interface Clock {
  /** Calls `fn` once after `ms`; the returned function cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
}

/** Node's setTimeout fires after 1 ms for delays above this (about 24.8 days). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  setTimer(fn, ms) {
    // Long delays (a lease of 30 days is legal in etcd) are waited for in steps.
    let t: NodeJS.Timeout;
    const arm = (left: number): void => {
      t = setTimeout(
        () => (left > MAX_TIMEOUT_MS ? arm(left - MAX_TIMEOUT_MS) : fn()),
        Math.min(left, MAX_TIMEOUT_MS),
      );
      t.unref();
    };
    arm(ms);
    return () => clearTimeout(t);
  },
};
