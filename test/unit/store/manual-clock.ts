// A clock that only moves when a test says so, for deterministic lease expiry.
import type { Clock } from '../../../src/store/clock.js';

export class ManualClock implements Clock {
  private now = 0;
  private timers = new Set<{ at: number; fn: () => void }>();

  setTimer(fn: () => void, ms: number): () => void {
    const t = { at: this.now + ms, fn };
    this.timers.add(t);
    return () => this.timers.delete(t);
  }

  advance(ms: number): void {
    this.now += ms;
    for (const t of [...this.timers].sort((a, b) => a.at - b.at)) {
      if (t.at > this.now) break;
      this.timers.delete(t);
      t.fn();
    }
  }
}
