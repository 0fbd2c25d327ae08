// Timers behind an interface so lease expiry can be driven by a manual clock in unit tests. The
// real clock unrefs its timers: a pending lease must never keep a process alive on its own.

export interface Clock {
  /** Calls `fn` once after `ms`; the returned function cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
  setTimer(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
};
