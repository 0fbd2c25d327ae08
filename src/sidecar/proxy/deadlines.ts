// Per-request timeouts without a Node timer per request. Every forwarded request has a deadline
// (its route's timeout, its stream's idle timeout) that it nearly always beats; with Node's
// setTimeout each one costs a timer object with an async id, a list insert and a removal, all on
// the request's path. Here a deadline is a slot in one min-heap per process, with one Node timer
// armed for the earliest: arming is a push, cancelling marks the slot dead. Dead slots leave the
// heap when they reach its top, or all at once when they outnumber the live ones, so the heap
// stays within twice the requests in flight.
//
// Times are milliseconds on performance.now()'s clock. A deadline fires on the first turn of the
// event loop at or after it, as a setTimeout would.

import { systemClock } from '../../store/clock.js';

/** What a deadline calls when it passes; `now` is the clock when it fired. */
export type OnDeadline = (now: number) => void;

/** A deadline in the queue; give it back to cancel() to drop it. */
export interface Deadline {
  readonly at: number;
}

interface Slot extends Deadline {
  at: number;
  /** Cleared when the slot is cancelled or has fired. */
  fire: OnDeadline | undefined;
}

/** Dead slots are swept out together once there are more than this and more than live ones. */
const SWEEP_AFTER = 256;

export class DeadlineQueue {
  private heap: Slot[] = [];
  private dead = 0;
  /** Cancels the Node timer armed for timerAt. */
  private cancelTimer: () => void = () => undefined;
  private timerAt = Infinity;

  constructor(readonly now: () => number = () => performance.now()) {}

  /** Calls `fire` once, at or after `at` (this queue's clock), unless cancelled first. */
  add(at: number, fire: OnDeadline): Deadline {
    const slot: Slot = { at, fire };
    const heap = this.heap;
    heap.push(slot);
    this.up(heap.length - 1);
    if (at < this.timerAt) this.arm(at);
    return slot;
  }

  cancel(deadline: Deadline | undefined): void {
    const slot = deadline as Slot | undefined;
    if (slot === undefined || slot.fire === undefined) return;
    slot.fire = undefined;
    this.dead++;
    if (this.dead > SWEEP_AFTER && this.dead * 2 > this.heap.length) this.sweep();
  }

  /** Slots held, dead ones included (for tests). */
  get size(): number {
    return this.heap.length;
  }

  private arm(at: number): void {
    this.cancelTimer();
    this.timerAt = at;
    // Unref'd (a deadline alone does not keep the process up; its request's sockets do), and a
    // wait beyond setTimeout's ~24.8 days is taken in steps.
    this.cancelTimer = systemClock.setTimer(this.onTimer, Math.max(1, Math.ceil(at - this.now())));
  }

  private readonly onTimer = (): void => {
    this.cancelTimer = () => undefined;
    this.timerAt = Infinity;
    const now = this.now();
    const heap = this.heap;
    while (heap.length > 0) {
      const top = heap[0]!;
      if (top.fire !== undefined && top.at > now) break;
      this.pop();
      const fire = top.fire;
      if (fire === undefined) {
        this.dead--;
        continue;
      }
      top.fire = undefined;
      try {
        fire(now);
      } catch (err) {
        // One request's failure must not strand the deadlines after it.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    if (heap.length > 0 && heap[0]!.at < this.timerAt) this.arm(heap[0]!.at);
  };

  private sweep(): void {
    const live = this.heap.filter((s) => s.fire !== undefined);
    this.heap = live;
    this.dead = 0;
    for (let i = (live.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop()!;
    if (heap.length === 0) return;
    heap[0] = last;
    this.down(0);
  }

  private up(i: number): void {
    const heap = this.heap;
    const slot = heap[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.at <= slot.at) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = slot;
  }

  private down(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const slot = heap[i]!;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && heap[child + 1]!.at < heap[child]!.at) child++;
      if (heap[child]!.at >= slot.at) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = slot;
  }
}

/** The sidecar's one queue for its requests' deadlines. */
export const requestDeadlines = new DeadlineQueue();
