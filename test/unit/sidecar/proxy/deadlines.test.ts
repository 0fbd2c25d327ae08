// Unit: the shared deadline queue behind the forwarder's route and idle timeouts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeadlineQueue } from '../../../../src/sidecar/proxy/deadlines.js';

/** Resolves with what `fired` holds once `n` deadlines have fired (or rejects after 5 s). */
function firedAfter<T>(fired: T[], n: number): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const check = (): void => {
      if (fired.length >= n) resolve(fired);
      else if (Date.now() - started > 5_000) reject(new Error(`only ${fired.length} of ${n} fired`));
      else setImmediate(check);
    };
    check();
  });
}

test('deadlines fire once each, in the order of their times, never before them', async () => {
  const q = new DeadlineQueue();
  const t0 = q.now();
  const fired: { name: string; at: number; now: number }[] = [];
  const add = (name: string, after: number): void => {
    const at = t0 + after;
    q.add(at, (now) => fired.push({ name, at, now }));
  };
  add('a', 60);
  add('b', 15); // earlier than the one the timer was armed for: the queue re-arms
  add('c', 35);
  add('d', 35);
  await firedAfter(fired, 4);
  const names = fired.map((f) => f.name);
  assert.equal(names[0], 'b');
  assert.deepEqual(names.slice(1, 3).sort(), ['c', 'd']); // equal times: either order
  assert.equal(names[3], 'a');
  for (const f of fired) assert.ok(f.now >= f.at, `${f.name} fired ${f.at - f.now} ms early`);
  // The earliest did not wait for the one the timer was first armed for.
  assert.ok(fired[0]!.now - t0 < 55, `b fired after ${fired[0]!.now - t0} ms`);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(fired.length, 4, 'each fires once');
  assert.equal(q.size, 0);
});

test('a cancelled deadline never fires; cancelling twice, after firing or nothing is harmless', async () => {
  const q = new DeadlineQueue();
  const t0 = q.now();
  const fired: string[] = [];
  const early = q.add(t0 + 10, () => fired.push('early'));
  q.add(t0 + 30, () => fired.push('late'));
  const cancelled = q.add(t0 + 20, () => fired.push('cancelled'));
  q.cancel(cancelled);
  q.cancel(cancelled);
  q.cancel(undefined);
  await firedAfter(fired, 2);
  q.cancel(early); // already fired
  await new Promise((r) => setTimeout(r, 40));
  assert.deepEqual(fired, ['early', 'late']);
  assert.equal(q.size, 0);
});

test('cancelled deadlines do not pile up: 100,000 armed and cancelled leave a bounded heap', () => {
  const q = new DeadlineQueue();
  const t0 = q.now();
  const live = [];
  for (let i = 0; i < 100_000; i++) {
    const d = q.add(t0 + 60_000 + i, () => assert.fail('must not fire'));
    if (i % 100 === 0) live.push(d);
    else q.cancel(d);
  }
  // 1,000 live; dead ones are swept once they outnumber the live ones (and exceed 256).
  assert.ok(q.size <= 2 * 1_000 + 257, `heap holds ${q.size} slots`);
  for (const d of live) q.cancel(d);
  assert.ok(q.size <= 257, `heap holds ${q.size} slots after all were cancelled`);
});

test('a deadline set from inside another fires too, in its turn', async () => {
  const q = new DeadlineQueue();
  const t0 = q.now();
  const fired: string[] = [];
  q.add(t0 + 5, (now) => {
    fired.push('first');
    q.add(now + 10, () => fired.push('second'));
    q.add(now - 1, () => fired.push('already due'));
  });
  await firedAfter(fired, 3);
  assert.deepEqual(fired, ['first', 'already due', 'second']);
});

test("a deadline beyond setTimeout's ~24.8 days waits quietly instead of waking every millisecond", async () => {
  let reads = 0;
  const q = new DeadlineQueue(() => {
    reads++;
    return performance.now();
  });
  const d = q.add(q.now() + 30 * 24 * 3600_000, () => assert.fail('must not fire'));
  const before = reads;
  await new Promise((r) => setTimeout(r, 50));
  // Each wake-up reads the clock; an overflowed setTimeout (1 ms) would wake ~50 times.
  assert.ok(reads - before <= 2, `the queue woke ${reads - before} times in 50 ms`);
  q.cancel(d);
});
