// The system clock behind lease expiry: delays beyond what one setTimeout can hold (about 24.8
// days) must not collapse to 1 ms — a 30-day lease used to expire at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../../../src/store/clock.js';

test('a 30-day timer does not fire early; cancelling it works', async () => {
  let fired = false;
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(w.name);
  process.on('warning', onWarning);
  const cancel = systemClock.setTimer(() => (fired = true), 30 * 24 * 3600 * 1000);
  // A collapsed timer fires after 1 ms; give it plenty of chances.
  await new Promise((r) => setTimeout(r, 50));
  cancel();
  process.off('warning', onWarning);
  assert.equal(fired, false);
  assert.deepEqual(warnings, [], 'no TimeoutOverflowWarning');
});

test('a short timer fires', async () => {
  // The clock's timers are unref'ed; a ref'ed guard keeps the process up and bounds the wait.
  let guard: NodeJS.Timeout | undefined;
  await Promise.race([
    new Promise<void>((resolve) => systemClock.setTimer(resolve, 5)),
    new Promise((_, reject) => (guard = setTimeout(() => reject(new Error('did not fire in 1 s')), 1000))),
  ]);
  clearTimeout(guard);
});
